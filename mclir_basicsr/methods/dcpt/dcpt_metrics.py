"""What ``calculate_psnr`` / ``calculate_ssim`` mean in DCPT's option files, and the validation that feeds them.

Their metrics take the restored and GT images as floats clamped to 0..1 and an ``image_range`` r: for r != 1 the
images are rounded to r levels first (r = 255: the 8-bit images BasicSR's own metrics see, so the values are BasicSR's
to the bit), for r = 1 the floats are measured as they are (``test_NAFNet_mix``). PSNR's peak and SSIM's constants
scale with r. Here the r-level (or float) images are handed to BasicSR's ``calculate_psnr`` / ``calculate_ssim``
scaled to 0..255 without rounding, which gives their values: PSNR and SSIM do not change when images, peak and
constants scale together.

Their files' metric types are read as ``calculate_psnr_dcpt`` / ``calculate_ssim_dcpt`` (:mod:`.dcpt_files`);
:func:`validate` (the validation of ``DCPTSRModel`` and ``DCPTTransferModel``) gives these the float images and every
other metric the 8-bit images, as BasicSR's SRModel does.
"""
import numpy as np
import os.path as osp
from basicsr.metrics import calculate_metric
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicsr.utils import imwrite, tensor2img
from basicsr.utils.registry import METRIC_REGISTRY

from ...training.validation import validate_each_image

THEIR_METRICS = {'calculate_psnr': 'calculate_psnr_dcpt', 'calculate_ssim': 'calculate_ssim_dcpt'}


def _their_images(img, img2, image_range):
    """Both images as float64 on the 0..255 scale, rounded to ``image_range`` levels unless it is 1."""
    if image_range <= 0:
        raise ValueError(f'image_range must be positive, got {image_range}.')
    pair = []
    for image in (img, img2):
        image = image / np.float32(255.) if image.dtype == np.uint8 else np.clip(image, 0, 1)  # 8-bit: BasicSR's loops
        if image_range != 1:
            image = np.round(image * np.float32(image_range))  # in float32, as their arrays and tensor2img
        pair.append(image.astype(np.float64) * (255. / image_range))
    return pair


@METRIC_REGISTRY.register()
def calculate_psnr_dcpt(img, img2, crop_border, input_order='HWC', test_y_channel=False, image_range=255., **kwargs):
    """DCPT's ``calculate_psnr`` (module doc): HWC BGR images, floats in 0..1 (or 8-bit)."""
    img, img2 = _their_images(img, img2, float(image_range))
    return calculate_psnr(img, img2, crop_border, input_order=input_order, test_y_channel=test_y_channel)


@METRIC_REGISTRY.register()
def calculate_ssim_dcpt(img, img2, crop_border, input_order='HWC', test_y_channel=False, image_range=255., **kwargs):
    """DCPT's ``calculate_ssim`` (module doc): per-channel SSIM of HWC BGR images, floats in 0..1 (or 8-bit)."""
    img, img2 = _their_images(img, img2, float(image_range))
    return calculate_ssim(img, img2, crop_border, input_order=input_order, test_y_channel=test_y_channel)


def _float_image(tensor):
    """A (1, C, H, W) RGB tensor as an HWC BGR float array clamped to 0..1 (what their metrics read)."""
    image = tensor[0].detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    return image[..., ::-1].copy() if image.shape[2] == 3 else image


def validate(model, dataloader, current_iter, tb_logger, save_img):
    """SRModel's validation (names, saved images, best-metric bookkeeping as BasicSR's), with DCPT's metrics fed the
    float images."""
    val = model.opt['val']

    def score(img_name, dataset_name):
        visuals = model.get_current_visuals()
        sr_img = tensor2img([visuals['result']])
        if save_img:
            if model.opt['is_train']:
                path = osp.join(model.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
            else:
                suffix = val.get('suffix') or model.opt['name']
                path = osp.join(model.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
            imwrite(sr_img, path)
        if not val.get('metrics') or 'gt' not in visuals:
            return {}
        images = {False: (sr_img, tensor2img([visuals['gt']])),
                  True: (_float_image(visuals['result']), _float_image(visuals['gt']))}
        return {name: calculate_metric(dict(zip(('img', 'img2'), images[block['type'] in THEIR_METRICS.values()])),
                                       block) for name, block in val['metrics'].items()}

    validate_each_image(model, dataloader, current_iter, tb_logger, score)
