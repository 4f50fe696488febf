"""Image sizes and colour of GT/LQ pairs: every image readable, scale, training patch, grayscale mixed with colour.

Cheap enough for every start: by default every image's header and end are read (:mod:`.images`; lmdb values too,
their sizes compared with ``meta_info.txt``); with ``check_images: false`` sizes come from lmdb ``meta_info.txt``
lines or image headers (up to ``MAX_HEADER_PAIRS`` pairs, spread over the dataset). Either way the first
``N_DECODE`` pairs are decoded in full.
"""
import cv2
import numpy as np
import warnings
from PIL import Image

from ...utils import few
from ..options import OptionError
from .images import pil_shape, unreadable

MAX_HEADER_PAIRS = 1000  # check_images: false: image headers read per dataset (spread over the dataset)
N_DECODE = 3  # pairs decoded in full with OpenCV, as BasicSR will read them


def header_shape(path, key):
    """(h, w, channels) from the image header (PIL), falling back to a full OpenCV decode.

    Raises:
        OptionError: naming ``key`` and ``path`` when neither can read the image.
    """
    try:
        with Image.open(path) as im:
            return pil_shape(im)
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


def check_images(pairs):
    """Read every image of ``pairs`` (header and end, :mod:`.images`): refuse unreadable ones, and stored sizes
    that differ from the listed ones (lmdb ``meta_info.txt``).

    Returns:
        dict: ``{(side, name): (h, w, c)}`` of every image.
    """
    shapes = {}
    for side, ref in (('gt', pairs.gt_ref), ('lq', pairs.lq_ref)):
        found, bad = pairs.inspect(side)
        if bad:
            raise unreadable(pairs.keys[side], [(n, ref(n), why) for n, why in bad], len(pairs.names),
                             pairs.partnered, pairs.lmdb)
        stale = []  # lmdb: meta_info.txt lists another size than the stored image's (disk: the same header)
        for name, got in found.items():
            listed = pairs.shape(side, name)
            if listed is not None and listed[:2] != got[:2]:
                stale.append((name, got, listed))
        if stale:
            name, got, listed = stale[0]
            raise OptionError(f'{pairs.keys[side]}: {len(stale)} image(s) in {pairs.where[side]} are not the size its '
                              f'meta_info.txt lists {few(n for n, _, _ in stale)}; e.g. {ref(name)} is '
                              f'{got[0]}x{got[1]} (HxW) but meta_info.txt says {listed[0]}x{listed[1]}. The lmdb and '
                              f'its meta_info.txt disagree; rebuild it with mclir-make-lmdb.')
        shapes.update(((side, n), got) for n, got in found.items())
    return shapes


def _decode_first(pairs):
    """Decode the first ``N_DECODE`` pairs as BasicSR will: catches undecodable values and stale meta_info shapes.

    Returns:
        dict: ``{(side, name): (h, w, c)}`` of the decoded images.
    """
    shapes = {}
    for name in pairs.names[:N_DECODE]:
        for side, ref in (('gt', pairs.gt_ref), ('lq', pairs.lq_ref)):
            img = pairs.decode(side, name)
            if img is None:
                raise OptionError(f'{pairs.keys[side]}: cannot decode image {ref(name)}; it is corrupt or not an '
                                  f'image. Remove it (and its partner) or rebuild the data.')
            got = _shape(img)
            listed = pairs.shape(side, name)
            if listed is not None and listed[:2] != got[:2]:
                raise OptionError(f'{pairs.keys[side]}: {ref(name)} is {got[0]}x{got[1]} but meta_info.txt says '
                                  f'{listed[0]}x{listed[1]}; the lmdb and its meta_info.txt disagree. Rebuild it '
                                  f'with mclir-make-lmdb.')
            shapes[side, name] = got
    return shapes


def check_sizes(key, ds, pairs, scale, phase, gt_size, every=True, y_key=None):
    """Check that the images are readable, that the pairs fit ``scale`` and the training patch, and that no pair mixes
    grayscale and colour.

    Args:
        key (str): the dataset's key path (``datasets.train``).
        ds (dict): the dataset options.
        pairs (Pairs): the pairs BasicSR will read (:class:`mclir_basicsr.preflight.pairs.Pairs`).
        scale (int): the upscaling factor.
        phase (str): ``train`` (GT = LQ x scale), or another phase (BasicSR crops GT to LQ x scale).
        gt_size (int | None): the training GT patch size.
        every (bool): read every image's header and end (``check_images``); else headers of a sample only.
        y_key (str | None): the option that trains on the Y channel (``datasets.train.color``), if the dataset has one.
    Raises:
        OptionError: the first problem found. Consistent grayscale pairs in a colour dataset only warn.
    """
    if not pairs.names:
        raise OptionError(f'{key}: empty dataset ({pairs.where["gt"]} holds no images).')
    shapes = check_images(pairs) if every else {}
    shapes.update(_decode_first(pairs))
    sampled = pairs.names if every else _sample(pairs.names)
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
        rule = ('GT and LQ of the same size' if scale == 1 else 'GT = LQ x scale' if phase == 'train' else
                'GT // scale = LQ (outside training BasicSR crops GT to LQ x scale)')
        fix = ('Check the top-level scale, or regenerate the LQ images (mod-crop GT to a multiple of the scale first)'
               if scale > 1 else 'At scale 1 GT and LQ must have the same size: re-export the LQ images at the size '
               'of their GT, or remove the pairs')
        raise OptionError(f'{pairs.keys["lq"]}: GT/LQ sizes do not match scale {scale} ({rule}) for {len(bad_scale)} '
                          f'pair(s) {few(n for n, _, _ in bad_scale)}; e.g. GT {pairs.gt_ref(name)} is {g[0]}x{g[1]} '
                          f'(HxW) and LQ {pairs.lq_ref(name)} is {q[0]}x{q[1]}, so GT should be '
                          f'{q[0] * scale}x{q[1] * scale}. {fix}.')
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
                          f'both images of each pair to the same mode (e.g. cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))'
                          + (f', or set {y_key}: y to train on the Y channel.' if y_key else '.'))
    if gray and len(gray) < len(sampled):  # an all-grayscale dataset is fine
        warnings.warn(f'{key}: {len(gray)} grayscale pair(s) in a colour dataset {few(gray)}: BasicSR reads them as '
                      f'3 equal channels, so they train as colourless samples. Convert or remove them if that is not '
                      f'intended.')
