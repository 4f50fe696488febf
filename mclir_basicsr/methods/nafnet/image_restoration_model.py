"""``ImageRestorationModel``: megvii-research/NAFNet's model class (``model_type`` of all their option files), with
their semantics, on this plugin's training step (resume, DDP, guard, AMP as every class of ours).

Training, as their ``optimize_parameters``: ``net_g(lq)``; a network that returns a list gets the pixel loss of every
output (summed), the perceptual loss and ``self.output`` on the last; the gradient norm is clipped to 0.01 unless
``train.use_grad_clip: false`` (``train.grad_clip`` sets another norm). Their ``mixup`` switch calls a method their
class does not have, so it is not offered.

Test and validation, as their ``test`` and ``dist_validation`` (keys under ``val``):

* ``max_minibatch``: at most this many images (or grid crops) per forward pass;
* ``grids`` (default false): restore overlapping crops of ``crop_size_h`` x ``crop_size_w`` pixels (or
  ``crop_size_h_ratio`` / ``crop_size_w_ratio`` of the image), spread evenly, and average them where they overlap;
* ``use_image`` (default true): the metrics compare 8-bit images; false: the float outputs (clamped to 0..1);
* ``rgb2bgr`` (default true): images written and measured in BGR channel order (false: as the network outputs);
* ``metrics``: ``calculate_psnr`` / ``calculate_ssim`` are NAFNet's (:mod:`.metrics`: its SSIM is 3-D), any other
  type BasicSR's; ``save_img`` writes the result and the ground truth, as theirs.
"""
import math
import os.path as osp
import torch
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError, check_bool, check_int, check_known_keys, check_number
from ...training.options import NAFNET_CLIP_NORM, GradClipConfig
from ...training.step import STEP_KEYS, TrainingStep
from ...training.validation import validate_each_image
from .metrics import NAFNET_METRICS

GRID_KEYS = ('crop_size_h', 'crop_size_w', 'crop_size_h_ratio', 'crop_size_w_ratio')
VAL_KEYS = ('grids', 'max_minibatch', 'use_image', 'rgb2bgr') + GRID_KEYS
BASICSR_VAL_KEYS = ('val_freq', 'save_img', 'suffix', 'metrics', 'pbar')


def grid_corners(h, w, crop_h, crop_w, scale):
    """Top-left corners (output pixels) of NAFNet's evenly spread, overlapping crops covering an h x w output."""
    crop_h, crop_w = min(crop_h, h) // scale * scale, min(crop_w, w) // scale * scale
    rows, cols = (h - 1) // crop_h + 1, (w - 1) // crop_w + 1
    step_i = crop_h if rows == 1 else math.ceil((h - crop_h) / (rows - 1) - 1e-8)
    step_j = crop_w if cols == 1 else math.ceil((w - crop_w) / (cols - 1) - 1e-8)
    step_i, step_j = max(scale, step_i // scale * scale), max(scale, step_j // scale * scale)

    def starts(size, crop, step):
        out, at = [], 0
        while True:
            if at + crop >= size:
                out.append(size - crop)
                return out
            out.append(at)
            at += step

    return [(i, j) for i in starts(h, crop_h, step_i) for j in starts(w, crop_w, step_j)], (crop_h, crop_w)


@MODEL_REGISTRY.register()
class ImageRestorationModel(TrainingStep, SRModel):
    """NAFNet's model class (see the module doc)."""

    plugin_option_keys = {'train': STEP_KEYS, 'top': ()}
    state_key = 'image_restoration'
    default_grad_clip = GradClipConfig(NAFNET_CLIP_NORM)  # their use_grad_clip defaults to true

    @staticmethod
    def check_eval_options(opt):
        """The ``val`` keys their test and validation read (module doc); checked for training and for testing."""
        val = opt.get('val')
        if not isinstance(val, dict):
            return
        check_known_keys(val, BASICSR_VAL_KEYS + VAL_KEYS, 'val')
        for key in ('grids', 'use_image', 'rgb2bgr'):
            if key in val:
                check_bool(val[key], f'val.{key}')
        if val.get('max_minibatch') is not None:
            check_int(val['max_minibatch'], 'val.max_minibatch', low=1)
        if not val.get('grids'):
            return
        for axis in ('h', 'w'):
            size, ratio = f'crop_size_{axis}', f'crop_size_{axis}_ratio'
            if val.get(size) is not None:
                check_int(val[size], f'val.{size}', low=int(opt.get('scale') or 1))
            elif val.get(ratio) is not None:
                check_number(val[ratio], f'val.{ratio}', low=0, low_open=True, high=1)
            else:
                raise OptionError(f'val.grids is true: set val.{size} (pixels) or val.{ratio} (a fraction of the '
                                  f'image), the crop size of the grid.')

    # ------------------------------------------------------------------ training
    def training_losses(self, current_iter):
        preds = self.train_net_g(self.lq)
        preds = preds if isinstance(preds, list) else [preds]
        self.output = preds[-1]
        losses = self.reconstruction_losses(self.output)
        if self.cri_pix and len(preds) > 1:
            losses['l_pix'] = sum(self.cri_pix(pred, self.gt) for pred in preds)
        return losses

    # ------------------------------------------------------------------ test
    def test(self):
        val = self.opt.get('val') or {}
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        lq, scale = self.lq, int(self.opt.get('scale') or 1)
        grid = None
        if val.get('grids'):
            if lq.shape[0] != 1:
                raise ValueError('val.grids restores one image at a time: use batch size 1 for validation and test.')
            h, w = lq.shape[-2] * scale, lq.shape[-1] * scale
            crop = [val.get(f'crop_size_{a}') or int(val[f'crop_size_{a}_ratio'] * size) for a, size in (('h', h),
                                                                                                         ('w', w))]
            corners, (ch, cw) = grid_corners(h, w, crop[0], crop[1], scale)
            lq = torch.cat([lq[..., i // scale:(i + ch) // scale, j // scale:(j + cw) // scale] for i, j in corners])
            grid = corners, (ch, cw), (h, w)
        net.eval()
        with torch.no_grad():
            outs = []
            for chunk in lq.split(val.get('max_minibatch') or len(lq)):
                pred = net(chunk)
                outs.append((pred[-1] if isinstance(pred, list) else pred).detach().cpu())
        if net is self.net_g:
            self.net_g.train()
        out = torch.cat(outs)
        self.output = (self._merge(out, *grid) if grid is not None else out).to(self.device)

    @staticmethod
    def _merge(crops, corners, crop, size):
        """Average the restored crops where they overlap."""
        total = crops.new_zeros((1, crops.shape[1]) + size)
        count = crops.new_zeros((1, 1) + size)
        for crop_out, (i, j) in zip(crops, corners):
            total[0, :, i:i + crop[0], j:j + crop[1]] += crop_out
            count[0, 0, i:i + crop[0], j:j + crop[1]] += 1.
        return total / count

    # ------------------------------------------------------------------ validation
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        val = self.opt['val']
        rgb2bgr, use_image = val.get('rgb2bgr', True), val.get('use_image', True)

        def score(img_name, dataset_name):
            visuals = self.get_current_visuals()
            sr_img = tensor2img([visuals['result']], rgb2bgr=rgb2bgr)
            gt_img = tensor2img([visuals['gt']], rgb2bgr=rgb2bgr) if 'gt' in visuals else None
            if save_img:
                self._save_images(sr_img, gt_img, img_name, dataset_name, current_iter)
            if not val.get('metrics') or gt_img is None:
                return {}
            pair = (sr_img, gt_img) if use_image else (visuals['result'], visuals['gt'])
            return {name: self._metric(block, *pair) for name, block in val['metrics'].items()}

        validate_each_image(self, dataloader, current_iter, tb_logger, score)

    @staticmethod
    def _metric(block, img, img2):
        args = {k: v for k, v in block.items() if k != 'type'}
        if block['type'] in NAFNET_METRICS:
            return NAFNET_METRICS[block['type']](img, img2, **args)
        return calculate_metric(dict(img=img, img2=img2), block)

    def _save_images(self, sr_img, gt_img, img_name, dataset_name, current_iter):
        folder = self.opt['path']['visualization']
        if self.opt['is_train']:
            stem = osp.join(folder, img_name, f'{img_name}_{current_iter}')
        else:
            stem = osp.join(folder, dataset_name, img_name)
        imwrite(sr_img, f'{stem}.png')
        if gt_img is not None:
            imwrite(gt_img, f'{stem}_gt.png')
