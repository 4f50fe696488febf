"""NAFNet's PSNR and SSIM, what ``calculate_psnr`` / ``calculate_ssim`` mean in megvii-research/NAFNet's option files.

Their validation computes the metrics on 8-bit images (``val.use_image: true``, the default) or on the float
tensors (``use_image: false``, the SIDD files). Their SSIM differs from BasicSR's: without ``test_y_channel`` it is
one SSIM over the H x W x C volume with an 11x11x11 Gaussian window (sigma 1.5, replicate border: ``ssim3d``, their
default) instead of the mean of per-channel 2-D SSIMs; on the Y channel the 2-D window also has a replicate border
(BasicSR's crops 5 pixels instead). The names stay BasicSR's in ``METRIC_REGISTRY``; :class:`ImageRestorationModel`
validates with these.

Differences from their code, on purpose: the peak (1 or 255) comes from the data type (floats are 0..1 images, 8-bit
images 0..255); theirs picks 1 whenever the restored image's maximum is at most 1, so a dark 8-bit image is scored
against peak 1, and a float output overshooting 1 against 255. Float outputs are clamped to 0..1 (as 8-bit images
are). The Y channel of a float image is taken at its own scale; theirs reads 0..1 values as 0..255.
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.metrics.metric_util import reorder_image, to_y_channel

WINDOW, SIGMA = 11, 1.5


def as_image(img, input_order='HWC'):
    """``(HWC float64 array, peak)`` of a uint8/float array or a (1,) C x H x W tensor."""
    if torch.is_tensor(img):
        img = img.detach().cpu()
        img = img.squeeze(0) if img.dim() == 4 else img
        array = img.clamp(0, 1).numpy().transpose(1, 2, 0) if img.is_floating_point() else img.numpy()
        peak = 1. if img.is_floating_point() else 255.
    else:
        array = reorder_image(img, input_order=input_order)
        peak = 1. if np.issubdtype(array.dtype, np.floating) and array.max() <= 1 else 255.
    return array.astype(np.float64), peak


def _pair(img, img2, crop_border, input_order):
    if tuple(img.shape) != tuple(img2.shape):
        raise ValueError(f'Image shapes differ: {tuple(img.shape)}, {tuple(img2.shape)}.')
    (a, peak), (b, _) = as_image(img, input_order), as_image(img2, input_order)
    if crop_border:
        a, b = (x[crop_border:-crop_border, crop_border:-crop_border, ...] for x in (a, b))
    return a, b, peak


def _y(img, peak):
    """Y of YCbCr (BasicSR's ``to_y_channel``) at the image's own scale."""
    return to_y_channel(img * (255. / peak)) * (peak / 255.)


def nafnet_psnr(img, img2, crop_border, input_order='HWC', test_y_channel=False):
    """PSNR in dB of two images (arrays 0..255 or 0..1, or tensors 0..1); inf for equal images."""
    a, b, peak = _pair(img, img2, crop_border, input_order)
    if test_y_channel:
        a, b = _y(a, peak), _y(b, peak)
    mse = np.mean((a - b)**2)
    return float('inf') if mse == 0 else float(20. * np.log10(peak / np.sqrt(mse)))


def _gaussian_filter(volume, dims):
    """The separable 11-tap Gaussian over ``dims`` of a float64 tensor, replicate border."""
    taps = torch.from_numpy(cv2.getGaussianKernel(WINDOW, SIGMA).ravel())
    out = volume[None, None]
    pad = WINDOW // 2
    for dim in dims:
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = WINDOW
        padding = [0] * 6
        padding[2 * (2 - dim)] = padding[2 * (2 - dim) + 1] = pad  # F.pad lists the last dimension first
        out = F.conv3d(F.pad(out, padding, mode='replicate'), taps.view(shape))
    return out[0, 0]


def _ssim_map(a, b, peak, dims):
    c1, c2 = (0.01 * peak)**2, (0.03 * peak)**2
    mu_a, mu_b = _gaussian_filter(a, dims), _gaussian_filter(b, dims)
    var_a = _gaussian_filter(a * a, dims) - mu_a**2
    var_b = _gaussian_filter(b * b, dims) - mu_b**2
    cov = _gaussian_filter(a * b, dims) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def nafnet_ssim(img, img2, crop_border, input_order='HWC', test_y_channel=False, ssim3d=True):
    """SSIM of two images as NAFNet computes it (module doc): on the Y channel a 2-D window with a replicate border;
    otherwise a 3-D window over H x W x C (``ssim3d``), or 2-D windows per channel where they fit (BasicSR's)."""
    a, b, peak = _pair(img, img2, crop_border, input_order)
    if test_y_channel:
        a, b = _y(a, peak), _y(b, peak)
    a, b = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)) for x in (a, b))
    if test_y_channel:
        return float(_ssim_map(a, b, peak, (0, 1)).mean())
    if ssim3d:
        return float(_ssim_map(a, b, peak, (0, 1, 2)).mean())
    pad = WINDOW // 2
    return float(_ssim_map(a, b, peak, (0, 1))[pad:-pad, pad:-pad].mean())


NAFNET_METRICS = {'calculate_psnr': nafnet_psnr, 'calculate_ssim': nafnet_ssim}
