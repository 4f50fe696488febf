"""DCPT's PSNR/SSIM (``image_range``; floats for 1) against a naive transcription of their formulas (hoatong2411/dcpt
at edd4c7a, basicsr/metrics/psnr_ssim.py), BasicSR's values for 255, their files' metric types, and the validation
of DCPT's SR model feeding them the float images."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

from mclir_basicsr.checks.repository_names import use_repository_names
from mclir_basicsr.methods.dcpt.dcpt_metrics import _float_image, calculate_psnr_dcpt, calculate_ssim_dcpt, validate
from mclir_basicsr.runtime.option_checks import REPOSITORIES
from tests.helpers import TEST_DATA


def _theirs(result, gt, crop_border, test_y_channel, image_range, what):
    """Their metric on RGB CHW float tensors clamped to 0..1, written out from their code."""
    images = []
    for t in (result, gt):
        img = t.clamp(0, 1).numpy().transpose(1, 2, 0)
        if image_range != 1:
            img = (img * float(image_range)).round().astype(np.uint8 if image_range == 255 else np.uint16)
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if crop_border:
            img = img[crop_border:-crop_border, crop_border:-crop_border]
        if test_y_channel:
            img = img.astype(np.float32) / image_range
            img = (img @ np.array([24.966, 128.553, 65.481]) + 16.0) / 255.  # BasicSR's bgr2ycbcr, y only
            img = img[..., None] * image_range
        images.append(img.astype(np.float64))
    a, b = images
    if what == 'psnr':
        return 10. * np.log10(image_range**2 / np.mean((a - b)**2))
    c1, c2 = (0.01 * image_range)**2, (0.03 * image_range)**2
    window = np.outer(cv2.getGaussianKernel(11, 1.5), cv2.getGaussianKernel(11, 1.5).T)
    values = []
    for j in range(a.shape[2]):
        x, y = a[..., j], b[..., j]
        f = lambda im: cv2.filter2D(im, -1, window)[5:-5, 5:-5]  # noqa: E731
        mu1, mu2 = f(x), f(y)
        s1, s2, s12 = f(x * x) - mu1**2, f(y * y) - mu2**2, f(x * y) - mu1 * mu2
        values.append((((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean())
    return np.mean(values)


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(3, 40, 48, generator=g)
    return (gt + 0.08 * torch.randn(3, 40, 48, generator=g)), gt  # overshoots 0..1: clamped as theirs


@pytest.mark.parametrize('image_range', [1., 255., 65535.])
@pytest.mark.parametrize('test_y_channel', [False, True])
@pytest.mark.parametrize('crop_border', [0, 4])
def test_their_formulas(image_range, test_y_channel, crop_border):
    result, gt = _pair()
    ours = [fn(_float_image(result[None]), _float_image(gt[None]), crop_border, test_y_channel=test_y_channel,
               image_range=image_range) for fn in (calculate_psnr_dcpt, calculate_ssim_dcpt)]
    theirs = [_theirs(result, gt, crop_border, test_y_channel, image_range, what) for what in ('psnr', 'ssim')]
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-7)


def test_range_255_is_basicsr_s_8_bit_value_to_the_bit_and_range_1_is_not():
    result, gt = _pair(1)
    sr8, gt8 = tensor2img([result[None]]), tensor2img([gt[None]])
    floats = _float_image(result[None]), _float_image(gt[None])
    assert calculate_psnr_dcpt(*floats, 0) == calculate_psnr(sr8, gt8, 0)
    assert calculate_ssim_dcpt(*floats, 0) == calculate_ssim(sr8, gt8, 0)
    assert calculate_psnr_dcpt(*floats, 0, image_range=1.) != pytest.approx(calculate_psnr(sr8, gt8, 0), abs=1e-4)


def test_their_files_metrics_are_read_as_theirs_and_others_stay_basicsr_s():
    with open(osp.join(TEST_DATA, 'dcpt', 'hoatong2411', 'options', 'all_in_one', 'test', 'test_NAFNet_mix.yml')) as f:
        opt = yaml.safe_load(f)
    use_repository_names(opt, REPOSITORIES)
    assert {b['type'] for b in opt['val']['metrics'].values()} == {'calculate_psnr_dcpt', 'calculate_ssim_dcpt'}
    assert {b['image_range'] for b in opt['val']['metrics'].values()} == {1.0}
    with open(osp.join(TEST_DATA, 'nafnet', 'options', 'train', 'SIDD', 'NAFNet-width32.yml')) as f:
        megvii = yaml.safe_load(f)
    read = copy.deepcopy(megvii)
    use_repository_names(read, REPOSITORIES)
    assert read['val']['metrics'] == megvii['val']['metrics']


class _Loader(list):
    def __init__(self, items, name):
        super().__init__(items)
        self.dataset = type('Set', (), {'opt': {'name': name}})()


def test_validation_feeds_their_metrics_floats_and_basicsr_s_8_bit(tmp_path):
    """One model validates their float PSNR and BasicSR's 8-bit PSNR on the same image: each as computed above."""
    from mclir_basicsr.methods.dcpt.dcpt_sr_model import DCPTSRModel
    result, gt = _pair(2)

    class Fixed(DCPTSRModel):  # the restored image is given: only the validation runs
        def __init__(self, opt):
            self.opt = opt

        def feed_data(self, data):
            self.lq, self.gt = data['lq'], data['gt']

        def test(self):
            self.output = result[None]

    metrics = {'float': {'type': 'calculate_psnr_dcpt', 'crop_border': 0, 'image_range': 1.},
               'eight_bit': {'type': 'calculate_psnr', 'crop_border': 0}}
    model = Fixed({'val': {'metrics': metrics, 'suffix': None}, 'is_train': False, 'name': 'fixed', 'rank': 0,
                   'path': {'visualization': str(tmp_path), 'results_root': str(tmp_path)}})
    validate(model, _Loader([{'lq': gt[None], 'gt': gt[None], 'lq_path': ['a.png']}], 'set'), 0, None, True)
    assert model.metric_results['float'] == pytest.approx(_theirs(result, gt, 0, False, 1., 'psnr'), rel=1e-6)
    assert model.metric_results['eight_bit'] == calculate_psnr(tensor2img([result[None]]), tensor2img([gt[None]]), 0)
    assert osp.isfile(tmp_path / 'set' / 'a_fixed.png')
