"""NAFNet's PSNRLoss, metrics and ImageRestorationModel: values equal those megvii-research/NAFNet's code gave once
(tests/data/nafnet/README.md); the model's training step, test-time grids and minibatches, and its option checks."""
import os.path as osp
import numpy as np
import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.methods.nafnet.image_restoration_model import grid_corners
from mclir_basicsr.methods.nafnet.metrics import nafnet_psnr, nafnet_ssim
from mclir_basicsr.methods.nafnet.psnr_loss import PSNRLoss
from tests.helpers import TEST_DATA, make_opt

REFERENCE = torch.load(osp.join(TEST_DATA, 'nafnet', 'reference_outputs.pt'))
TINY_NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1], 'middle_blk_num': 1, 'dec_blk_nums': [1]}


def test_psnr_loss_and_its_gradient_equal_the_reference():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.rand((2, 3, 16, 16), generator=g), torch.rand((2, 3, 16, 16), generator=g)
    pred.requires_grad_(True)
    loss = PSNRLoss()(pred, target)
    loss.backward()
    ref = REFERENCE['psnr_loss']
    assert loss.item() == pytest.approx(ref['loss'], abs=1e-6)
    torch.testing.assert_close(pred.grad, ref['grad_pred'], rtol=1e-5, atol=1e-7)
    assert PSNRLoss(toY=True)(pred, target).item() == pytest.approx(ref['loss_toY'], abs=1e-5)


@pytest.mark.parametrize('block, message', [
    ({'reduction': 'sum'}, 'PSNRLoss averages over the batch only'),
    ({'toY': 'yes'}, 'toY'),
    ({'loss_weigth': 1}, 'loss_weight'),
])
def test_psnr_loss_refuses_what_it_cannot_do(block, message):
    with pytest.raises(OptionError, match=message):
        PSNRLoss.check_options(block, 'train.pixel_opt')


def test_metrics_on_8_bit_images_equal_the_reference():
    rng = np.random.default_rng(3)
    img, img2 = (rng.integers(0, 256, size=(48, 40, 3)).astype(np.uint8) for _ in range(2))
    ref = REFERENCE['metrics']['uint8']
    assert nafnet_psnr(img, img2, 0) == pytest.approx(ref['psnr'], abs=1e-6)
    assert nafnet_ssim(img, img2, 0) == pytest.approx(ref['ssim'], abs=1e-6)  # 3-D SSIM
    assert nafnet_psnr(img, img2, 0, test_y_channel=True) == pytest.approx(ref['psnr_y'], abs=1e-4)
    assert nafnet_ssim(img, img2, 0, test_y_channel=True) == pytest.approx(ref['ssim_y'], abs=1e-6)
    assert nafnet_ssim(img, img2, 0, ssim3d=False) == pytest.approx(ref['ssim_2d'], abs=1e-6)


def test_metrics_on_float_outputs_equal_the_reference():
    g = torch.Generator().manual_seed(4)
    a, b = torch.rand((1, 3, 48, 40), generator=g), torch.rand((1, 3, 48, 40), generator=g)
    ref = REFERENCE['metrics']['tensor']
    assert nafnet_psnr(a, b, 0) == pytest.approx(ref['psnr'], abs=1e-6)
    assert nafnet_ssim(a, b, 0) == pytest.approx(ref['ssim'], abs=1e-6)
    overshoot = a * 1.5  # clamped as 8-bit images are; the peak stays 1
    assert nafnet_psnr(overshoot, b, 0) == nafnet_psnr(overshoot.clamp(max=1), b, 0) < 20


@pytest.mark.parametrize('h, w, crop, scale', [(100, 90, 40, 1), (64, 64, 64, 1), (30, 50, 64, 1), (96, 80, 36, 2)])
def test_grid_crops_cover_the_image_evenly(h, w, crop, scale):
    corners, (ch, cw) = grid_corners(h, w, crop, crop, scale)
    covered = torch.zeros(h, w)
    for i, j in corners:
        assert 0 <= i <= h - ch and 0 <= j <= w - cw and i % scale == 0 and j % scale == 0
        covered[i:i + ch, j:j + cw] += 1
    assert covered.min() >= 1 and ch % scale == 0 and cw % scale == 0


def _model(tmp_path, val=None, **train):
    opt = make_opt(tmp_path, model_type='ImageRestorationModel', network=dict(TINY_NAFNET), scale=1,
                   extra_train=dict(pixel_opt={'type': 'PSNRLoss'}, **train))
    opt['val'] = dict({'val_freq': 1, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}, **(val or {}))
    check_options(opt)
    return build_model(opt)


def test_training_clips_the_gradient_to_nafnets_norm_unless_told_not_to(tmp_path):
    torch.manual_seed(0)
    model = _model(tmp_path)
    assert model.guard.clip.max_norm == 0.01
    model.feed_data({'lq': torch.rand(2, 3, 16, 16), 'gt': torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_pix', 'grad_norm'} and model.log_dict['l_pix'] < 0
    assert _model(tmp_path / 'off', use_grad_clip=False).guard.clip is None


def test_a_list_returning_network_gets_a_pixel_loss_per_output(tmp_path):
    model = _model(tmp_path)
    net = model.net_g
    model.train_net_g = lambda x: [net(x) * 0.5, net(x)]
    model.gt = gt = torch.rand(1, 3, 16, 16)
    model.lq = lq = torch.rand(1, 3, 16, 16)
    losses = model.training_losses(1)
    with torch.no_grad():
        expected = model.cri_pix(net(lq) * 0.5, gt) + model.cri_pix(net(lq), gt)
    assert losses['l_pix'].item() == pytest.approx(expected.item(), rel=1e-6)


def test_grids_and_minibatches_give_the_whole_image_result(tmp_path):
    whole = _model(tmp_path / 'whole')
    gridded = _model(tmp_path / 'grid', val={'grids': True, 'crop_size_h': 24, 'crop_size_w_ratio': 0.5,
                                             'max_minibatch': 2})
    pointwise = torch.nn.Conv2d(3, 3, 1)  # its result cannot depend on the crop
    lq = torch.rand(1, 3, 40, 36)
    for model in (whole, gridded):
        model.net_g = pointwise
        model.lq = lq
        model.test()
    torch.testing.assert_close(gridded.output, whole.output, rtol=0, atol=1e-6)


@pytest.mark.parametrize('val, message', [
    ({'grids': True}, 'val.grids is true: set val.crop_size_h'),
    ({'grids': True, 'crop_size_h': 32, 'crop_size_w_ratio': 1.5}, 'val.crop_size_w_ratio'),
    ({'max_minibatch': 0}, 'val.max_minibatch'),
    ({'use_image': 'no'}, 'val.use_image'),
    ({'gird': True}, 'val.grids'),
])
def test_val_keys_are_checked_before_anything_is_built(tmp_path, val, message):
    with pytest.raises(OptionError, match=message):
        _model(tmp_path, val=val)
