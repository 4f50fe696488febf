"""Image sizes and colour of GT/LQ pairs: scale, training patch, grayscale mixed with colour.

Cheap enough for every start: sizes come from lmdb ``meta_info.txt`` lines or image headers (up to
``MAX_HEADER_PAIRS`` pairs, spread over the dataset); only the first ``N_DECODE`` pairs are decoded in full.
"""
import cv2
import numpy as np
import warnings
from PIL import Image

from ..options import OptionError
from ..utils import few

MAX_HEADER_PAIRS = 1000  # disk backend: image headers read per dataset (spread over the dataset)
N_DECODE = 3  # pairs decoded in full with OpenCV, as BasicSR will read them
_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


def header_shape(path, key):
    """(h, w, channels) from the image header (PIL), falling back to a full OpenCV decode.

    Raises:
        OptionError: naming ``key`` and ``path`` when neither can read the image.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.mode in _GRAY_MODES:
                return h, w, 2 if im.mode in ('LA', 'La') else 1
            return h, w, len(im.getbands()) if im.mode != 'P' else 3
    except Exception:  # noqa: BLE001 - formats PIL cannot parse: ask OpenCV, as BasicSR does
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise OptionError(f'{key}: cannot read image {path}; it is corrupt or not an image. Remove or replace '
                              f'it.') from None
        return _shape(img)


def _shape(img):
    return img.shape[0], img.shape[1], (img.shape[2] if img.ndim == 3 else 1)


def _sample(names):
    """At most ``MAX_HEADER_PAIRS`` names, evenly spread (the first and last included)."""
    n = len(names)
    if n <= MAX_HEADER_PAIRS:
        return list(names)
    idx = sorted(set(np.linspace(0, n - 1, MAX_HEADER_PAIRS).round().astype(int).tolist()))
    return [names[i] for i in idx]


def _is_gray(c):
    return c in (1, 2)


def _kind(c):
    return 'grayscale' if _is_gray(c) else 'colour'


def _decode_first(key, pairs):
    """Decode the first ``N_DECODE`` pairs as BasicSR will: catches undecodable values and stale meta_info shapes.

    Returns:
        dict: ``{(side, name): (h, w, c)}`` of the decoded images.
    """
    shapes = {}
    for name in pairs.names[:N_DECODE]:
        for side, ref in (('gt', pairs.gt_ref), ('lq', pairs.lq_ref)):
            img = pairs.decode(side, name)
            if img is None:
                raise OptionError(f'{key}.dataroot_{side}: cannot decode image {ref(name)}; it is corrupt or not an '
                                  f'image. Remove it (and its partner) or rebuild the data.')
            got = _shape(img)
            listed = pairs.shape(side, name)
            if listed is not None and listed[:2] != got[:2]:
                raise OptionError(f'{key}.dataroot_{side}: {ref(name)} is {got[0]}x{got[1]} but meta_info.txt says '
                                  f'{listed[0]}x{listed[1]}; the lmdb and its meta_info.txt disagree. Rebuild it '
                                  f'with mclir-make-lmdb.')
            shapes[side, name] = got
    return shapes


def check_sizes(key, ds, pairs, scale, phase, gt_size):
    """Check that the pairs fit ``scale`` and the training patch, and that no pair mixes grayscale and colour.

    Args:
        key (str): the dataset's key path (``datasets.train``).
        ds (dict): the dataset options.
        pairs (Pairs): the pairs BasicSR will read (:class:`mclir_basicsr.preflight.pairs.Pairs`).
        scale (int): the upscaling factor.
        phase (str): ``train`` (GT = LQ x scale), or another phase (BasicSR crops GT to LQ x scale).
        gt_size (int | None): the training GT patch size.
    Raises:
        OptionError: the first problem found. Consistent grayscale pairs in a colour dataset only warn.
    """
    if not pairs.names:
        raise OptionError(f'{key}: empty dataset ({pairs.where["gt"]} holds no images).')
    shapes = _decode_first(key, pairs)
    sampled = _sample(pairs.names)
    bad_scale, too_small, mixed, gray = [], [], [], []
    for name in sampled:
        g = shapes.get(('gt', name)) or pairs.shape('gt', name)
        q = shapes.get(('lq', name)) or pairs.shape('lq', name)
        if g is None or q is None:
            continue
        if phase == 'train':
            ok = g[0] == q[0] * scale and g[1] == q[1] * scale
        else:  # BasicSR crops GT to LQ * scale outside training
            ok = g[0] // scale == q[0] and g[1] // scale == q[1]
        if not ok:
            bad_scale.append((name, g, q))
        if gt_size is not None and (q[0] < gt_size // scale or q[1] < gt_size // scale):
            too_small.append((name, q))
        if _is_gray(g[2]) != _is_gray(q[2]):
            mixed.append((name, g, q))
        elif _is_gray(g[2]):
            gray.append(name)
    if bad_scale:
        name, g, q = bad_scale[0]
        rule = ('GT = LQ x scale' if phase == 'train' else
                'GT // scale = LQ (outside training BasicSR crops GT to LQ x scale)')
        raise OptionError(f'{key}: GT/LQ sizes do not match scale {scale} ({rule}) for {len(bad_scale)} pair(s) '
                          f'{few(n for n, _, _ in bad_scale)}; e.g. GT {pairs.gt_ref(name)} is {g[0]}x{g[1]} (HxW) '
                          f'and LQ {pairs.lq_ref(name)} is {q[0]}x{q[1]}, so GT should be '
                          f'{q[0] * scale}x{q[1] * scale}. Check the top-level scale, or regenerate the LQ images '
                          f'(mod-crop GT to a multiple of the scale first).')
    if too_small:
        name, q = too_small[0]
        p = gt_size // scale
        raise OptionError(f'{key}.gt_size: {len(too_small)} LQ image(s) are smaller than the LQ training patch '
                          f'{p}x{p} (gt_size {gt_size} // scale {scale}): {few(n for n, _ in too_small)}; e.g. '
                          f'{pairs.lq_ref(name)} is {q[0]}x{q[1]}. Lower {key}.gt_size or remove those images.')
    if ds.get('color') == 'y':  # the Y channel of a grayscale and of a colour image are alike
        return
    if mixed:
        name, g, q = mixed[0]
        raise OptionError(f'{key}: grayscale mixed with colour in {len(mixed)} pair(s) {few(n for n, _, _ in mixed)}; '
                          f'e.g. GT {pairs.gt_ref(name)} is {_kind(g[2])} ({g[2]} channel(s)) and LQ '
                          f'{pairs.lq_ref(name)} is {_kind(q[2])} ({q[2]} channel(s)). BasicSR reads every '
                          f'image as 3-channel colour, so the network would learn to add or remove colour. Convert '
                          f'both images of each pair to the same mode (e.g. cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)), '
                          f'or set {key}.color: y to train on the Y channel.')
    if gray and len(gray) < len(sampled):  # an all-grayscale dataset is fine
        warnings.warn(f'{key}: {len(gray)} grayscale pair(s) in a colour dataset {few(gray)}: BasicSR reads them as '
                      f'3 equal channels, so they train as colourless samples. Convert or remove them if that is not '
                      f'intended.')
