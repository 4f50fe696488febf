"""The tasks of :class:`~mclir_basicsr.data.all_in_one_dataset.AllInOneDataset`: per-kind pairing rules and option
checks. :func:`check_task` turns one entry of ``tasks`` into a :class:`Task` by listing files (nothing is decoded);
every problem is an :class:`~mclir_basicsr.options.OptionError` whose message starts with the task's key path
(``datasets.train.tasks[1].dataroot: ...``), names the file or folder and says what to do.

Named kinds pair image files of any extension on the name without extension (hidden files skipped): derain
``rainy/rain-N`` <-> ``gt/norain-N`` (a name not starting with ``rain`` keeps its name); dehaze ``NNNN_A_beta`` <->
``NNNN`` (the hazy name up to its first ``_``; hazy images may sit in sub-folders of ``synthetic/``; GT images
without a hazy one are unused, as OTS is often used in part); deblur and lowlight: the same name. ``paired`` lists
its pairs with BasicSR's ``paired_paths_from_*`` exactly as ``PairedImageDataset`` does, failures translated.
"""
import collections
import os.path as osp
from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb, paired_paths_from_meta_info_file
from basicsr.utils import scandir

from ..checks.options import OptionError, check_int, check_known_keys, check_number, nearest
from ..utils import few, is_image_file

KINDS = ('denoise', 'derain', 'dehaze', 'deblur', 'lowlight', 'paired')
LAYOUTS = {'derain': (('rainy', 'gt'), ), 'dehaze': (('synthetic', 'original'), ('hazy', 'gt')),
           'deblur': (('blur', 'sharp'), ), 'lowlight': (('low', 'high'), )}  # (LQ, GT) sub-folders, tried in order
RULES = {'derain': 'rainy/rain-N.* <-> gt/norain-N.*', 'dehaze': 'hazy NNNN_A_beta.* <-> GT NNNN.*',
         'deblur': 'blur/X <-> sharp/X', 'lowlight': 'low/X <-> high/X'}
COMMON_KEYS = ('kind', 'name', 'repeat', 'meta_info_file', 'io_backend')
KIND_KEYS = {'denoise': ('dataroot_gt', 'sigma'), 'paired': ('dataroot_gt', 'dataroot_lq', 'filename_tmpl')}
IO_KEYS = {'disk': ('type', ), 'lmdb': ('type', 'readonly', 'lock', 'readahead')}


# One checked task. samples: (lq_path, gt_path), sorted by name or in the order of meta_info_file (lmdb keys for paired
# on lmdb; for denoise both are the clean image); sigma (denoise): ('list', values) or ('range', low, high); roots
# (paired): (dataroot_lq, dataroot_gt).
Task = collections.namedtuple('Task', 'key name kind repeat io_backend samples sigma roots')


def check_io_backend(io, key):
    """A copy of ``io`` (``{type: disk}`` or ``{type: lmdb, ...}``), checked."""
    if not isinstance(io, dict) or io.get('type') not in IO_KEYS:
        raise OptionError(f'{key} must be {{type: disk}} (image folders) or {{type: lmdb}} (kind: paired only), '
                          f'got {io!r}.')
    check_known_keys(io, IO_KEYS[io['type']], key)
    return dict(io)


def check_sigma(sigma, key):
    """``('list', values)`` for a number or a list, ``('range', low, high)`` for ``{min, max}``; 0-255 scale."""
    if sigma is None:
        raise OptionError(f'{key} is missing: give the noise level(s) on the 0-255 scale, e.g. [15, 25, 50] (one '
                          f'drawn per sample), {{min: 0, max: 55}} (drawn uniformly) or 25.')
    if isinstance(sigma, dict):
        check_known_keys(sigma, ('min', 'max'), key)
        if len(sigma) != 2:
            raise OptionError(f'{key} needs both min and max, e.g. {{min: 0, max: 55}}, got {sigma!r}.')
        low, high = (check_number(sigma[k], f'{key}.{k}', 0, 255) for k in ('min', 'max'))
        if low > high:
            raise OptionError(f'{key}: min ({low:g}) > max ({high:g}); swap them.')
        return 'range', low, high
    if isinstance(sigma, (list, tuple)):
        if not sigma:
            raise OptionError(f'{key} is an empty list: give at least one noise level, e.g. [15, 25, 50].')
        return 'list', tuple(check_number(v, f'{key}[{i}]', 0, 255) for i, v in enumerate(sigma))
    return 'list', (check_number(sigma, key, 0, 255), )


def _folder(key, folder, fix):
    if not isinstance(folder, str):
        raise OptionError(f'{key} must be a folder path, got {folder!r}.')
    if not osp.isdir(folder):
        raise OptionError(f'{key}: {folder} does not exist or is not a folder. {fix}')
    return folder


def _images(folder, recursive=False):
    return sorted(f for f in scandir(folder, recursive=recursive) if is_image_file(f))


def _by_stem(key, folder, names):
    """``{name without extension: name}``; two images differing only by extension are ambiguous."""
    index = {}
    for name in names:
        stem = osp.splitext(name)[0]
        if stem in index:
            raise OptionError(f'{key}: {folder} holds two images named {stem!r} ({index[stem]}, {name}); keep one.')
        index[stem] = name
    return index


def _meta_names(key, meta):
    """The first token of each non-empty line of the list file ``meta`` (as BasicSR reads meta_info files)."""
    if not isinstance(meta, str) or not osp.isfile(meta):
        raise OptionError(f'{key}: {meta!r} is not a file. Fix the path, or remove the key to use every image.')
    with open(meta) as f:
        names = [line.strip().split(' ')[0] for line in f if line.strip()]
    if not names:
        raise OptionError(f'{key}: {meta} lists no images (empty dataset). One image per line: "<name> ...".')
    return names


def _partner(kind, rel, to_gt):
    """The name without extension of the partner of ``rel``: its GT (``to_gt``) or its LQ (not for dehaze)."""
    folder, base = osp.split(osp.splitext(rel)[0])
    if kind == 'dehaze':
        return base.split('_')[0]
    if kind == 'derain' and base.startswith('rain' if to_gt else 'norain'):
        base = 'no' + base if to_gt else base[2:]
    return osp.join(folder, base)


def _named_samples(key, kind, t):
    """Pairs of a named kind (derain, dehaze, deblur, lowlight) under ``t['dataroot']``."""
    root = _folder(f'{key}.dataroot', t.get('dataroot'), f'Give the {kind} data folder holding '
                   + ' or '.join(f'{lq}/ and {gt}/' for lq, gt in LAYOUTS[kind]) + '.')
    layout = next(((lq, gt) for lq, gt in LAYOUTS[kind] if osp.isdir(osp.join(root, lq))), None)
    if layout is None:
        subs = ' or '.join(f'{lq}/' for lq, _ in LAYOUTS[kind])
        raise OptionError(f'{key}.dataroot: {root} has no {subs} sub-folder (the degraded images of kind {kind}: '
                          f'{RULES[kind]}). Point dataroot at the folder that holds it.')
    lq_dir = osp.join(root, layout[0])
    gt_dir = _folder(f'{key}.dataroot', osp.join(root, layout[1]), f'Kind {kind} needs the GT images of {lq_dir} '
                     f'there ({RULES[kind]}).')
    meta = t.get('meta_info_file')
    by_gt = meta is not None and kind != 'dehaze'  # a list file names GT images, except for dehaze (hazy ones)
    if meta is not None:
        listed = _meta_names(f'{key}.meta_info_file', meta)
        folder = gt_dir if by_gt else lq_dir
        missing = [n for n in listed if not osp.isfile(osp.join(folder, n))]
        if missing:
            raise OptionError(f'{key}.meta_info_file: {meta} names {len(missing)} image(s) not in {folder}: '
                              f'{few(missing)}. Fix the list (paths relative to {folder}) or add the files.')
    else:
        listed = _images(lq_dir, recursive=kind == 'dehaze')
    if not listed:
        raise OptionError(f'{key}.dataroot: {lq_dir} contains no images (empty task). Put the {kind} images there '
                          f'({RULES[kind]}) or remove the task.')
    if by_gt:
        lq_index = _by_stem(f'{key}.dataroot', lq_dir, _images(lq_dir))
        pairs = [(lq_index.get(_partner(kind, g, False)), g) for g in listed]
        unpaired = ([g for lq, g in pairs if lq is None], [])
    else:
        gt_index = _by_stem(f'{key}.dataroot', gt_dir, _images(gt_dir))
        pairs = [(q, gt_index.get(_partner(kind, q, True))) for q in listed]
        used = {g for _, g in pairs}
        spare = [] if meta is not None or kind == 'dehaze' else [g for g in gt_index.values() if g not in used]
        unpaired = (spare, [q for q, g in pairs if g is None])
    if unpaired[0] or unpaired[1]:
        raise OptionError(f'{key}.dataroot: images without a partner ({RULES[kind]}): {len(unpaired[1])} in '
                          f'{lq_dir} without GT {few(unpaired[1])}, {len(unpaired[0])} in {gt_dir} without LQ '
                          f'{few(unpaired[0])}. Add or remove files, or list the pairs to use in meta_info_file.')
    return [(osp.join(lq_dir, q), osp.join(gt_dir, g)) for q, g in pairs]


def _denoise_samples(key, t):
    roots = t.get('dataroot_gt')
    many = isinstance(roots, list)
    if not roots or not isinstance(roots, (str, list)):
        raise OptionError(f'{key}.dataroot_gt must be a folder or a list of folders of clean images, got {roots!r}.')
    roots = [_folder(f'{key}.dataroot_gt' + (f'[{i}]' if many else ''), r, 'Give the folder of clean images.')
             for i, r in enumerate(roots if many else [roots])]
    meta = t.get('meta_info_file')
    if meta is None:
        paths = [osp.join(r, n) for r in roots for n in _images(r)]
        if not paths:
            raise OptionError(f'{key}.dataroot_gt: {", ".join(roots)} contain(s) no images (empty task). Put the '
                              f'clean images there or remove the task.')
    else:
        names = _meta_names(f'{key}.meta_info_file', meta)
        found = [next((osp.join(r, n) for r in roots if osp.isfile(osp.join(r, n))), None) for n in names]
        missing = [n for n, p in zip(names, found) if p is None]
        if missing:
            raise OptionError(f'{key}.meta_info_file: {meta} names {len(missing)} image(s) in none of '
                              f'{", ".join(roots)}: {few(missing)}. Fix the list or add the files.')
        paths = found
    return [(p, p) for p in paths]


def _lmdb_samples(key, roots):
    for side, root in zip(('lq', 'gt'), roots):
        if not root.endswith('.lmdb') or not all(osp.isfile(osp.join(root, n)) for n in ('data.mdb', 'meta_info.txt')):
            raise OptionError(f'{key}.dataroot_{side}: {root} is not an lmdb (a folder ending in .lmdb with data.mdb '
                              f'and meta_info.txt) but io_backend type is lmdb. Build one with mclir-make-lmdb, or '
                              f'set io_backend: {{type: disk}} for an image folder.')
    try:
        paths = paired_paths_from_lmdb(list(roots), ['lq', 'gt'])
    except ValueError:  # the keys differ
        keys = []
        for root in roots:
            with open(osp.join(root, 'meta_info.txt')) as f:
                keys.append({line.split('.')[0] for line in f})
        only_lq, only_gt = sorted(keys[0] - keys[1]), sorted(keys[1] - keys[0])
        raise OptionError(f'{key}: the lmdbs {roots[1]} (GT) and {roots[0]} (LQ) list different keys: '
                          f'{len(only_lq)} LQ without GT {few(only_lq)}, {len(only_gt)} GT without LQ '
                          f'{few(only_gt)}. Rebuild both from paired folders with mclir-make-lmdb.') from None
    return paths


def _folder_samples(key, roots, tmpl):
    for side, root in zip(('lq', 'gt'), roots):
        other = sorted(f for f in scandir(root) if not is_image_file(f))
        if other:
            raise OptionError(f'{key}.dataroot_{side}: {root} holds {len(other)} file(s) that are not images: '
                              f'{few(other)}. BasicSR reads every file of the folder; move them out (or, for an '
                              f'lmdb, set io_backend: {{type: lmdb}}).')
    try:
        return sorted(paired_paths_from_folder(list(roots), ['lq', 'gt'], tmpl), key=lambda p: p['gt_path'])
    except AssertionError:
        lq_names, gt_names = set(scandir(roots[0])), sorted(scandir(roots[1]))
        wanted = {f'{tmpl.format(osp.splitext(g)[0])}{osp.splitext(g)[1]}': g for g in gt_names}
        no_lq = [g for w, g in wanted.items() if w not in lq_names]
        no_gt = sorted(q for q in lq_names if q not in wanted)
        raise OptionError(f'{key}: {roots[0]} (LQ) and {roots[1]} (GT) do not pair up with filename_tmpl {tmpl!r}: '
                          f'{len(no_gt)} LQ without GT {few(no_gt)}, {len(no_lq)} GT without LQ {few(no_lq)}. Fix '
                          f'the names or filename_tmpl.') from None


def _paired_samples(key, t, io):
    """Pairs of ``kind: paired``, listed exactly as BasicSR's ``PairedImageDataset`` lists them."""
    roots = []
    for side in ('lq', 'gt'):
        root = t.get(f'dataroot_{side}')
        if not isinstance(root, str) or not osp.exists(root):
            raise OptionError(f'{key}.dataroot_{side}: {root!r} does not exist. Give the {side.upper()} image '
                              f'folder or lmdb (kind paired needs dataroot_gt and dataroot_lq).')
        roots.append(root)
    tmpl, meta = t.get('filename_tmpl', '{}'), t.get('meta_info_file')
    if not isinstance(tmpl, str) or tmpl.count('{}') != 1:
        raise OptionError(f'{key}.filename_tmpl must be a string with one "{{}}" (the GT name), got {tmpl!r}.')
    if io['type'] == 'lmdb':
        if meta is not None:
            raise OptionError(f'{key}.meta_info_file is not read with io_backend lmdb (the lmdb\'s meta_info.txt '
                              f'lists the keys); remove it.')
        paths = _lmdb_samples(key, roots)
    else:
        for side, root in zip(('lq', 'gt'), roots):
            _folder(f'{key}.dataroot_{side}', root, 'With io_backend disk give an image folder, or set io_backend: '
                    '{type: lmdb} for an lmdb.')
        if meta is not None:
            _meta_names(f'{key}.meta_info_file', meta)
            paths = paired_paths_from_meta_info_file(roots, ['lq', 'gt'], meta, tmpl)
            missing = [p[k] for p in paths for k in ('lq_path', 'gt_path') if not osp.isfile(p[k])]
            if missing:
                raise OptionError(f'{key}.meta_info_file: {meta} names {len(missing)} image(s) that do not exist: '
                                  f'{few(missing)}. Fix the list, the files or filename_tmpl.')
        else:
            paths = _folder_samples(key, roots, tmpl)
    if not paths:
        raise OptionError(f'{key}: {roots[1]} (GT) and {roots[0]} (LQ) hold no images (empty task).')
    return [(p['lq_path'], p['gt_path']) for p in paths], tuple(roots)


def check_task(t, key, default_io):
    """Check one entry of ``tasks`` (key path ``key``) and list its samples; ``default_io``: the dataset's
    checked ``io_backend``. Returns a :class:`Task`."""
    if not isinstance(t, dict):
        raise OptionError(f'{key} must be a mapping with a kind ({", ".join(KINDS)}), got {t!r}.')
    kind = t.get('kind')
    if kind not in KINDS:
        hint = nearest(kind, KINDS) if isinstance(kind, str) else None
        raise OptionError(f'{key}.kind: {kind!r} is not a task kind.' + (f' Did you mean {hint}?' if hint else '')
                          + f' Kinds: {", ".join(KINDS)}.')
    check_known_keys(t, COMMON_KEYS + KIND_KEYS.get(kind, ('dataroot', )), key)
    name = t.get('name', kind)
    if not isinstance(name, str) or not name:
        raise OptionError(f'{key}.name must be a non-empty string (the label name in logs), got {name!r}.')
    repeat = check_int(t.get('repeat', 1), f'{key}.repeat', low=1)
    io = check_io_backend(t['io_backend'], f'{key}.io_backend') if 'io_backend' in t else default_io
    if kind != 'paired' and io['type'] != 'disk':
        raise OptionError(f'{key}.io_backend: kind {kind} reads image folders only (type disk; lmdb may come from '
                          f'the dataset\'s io_backend). For an lmdb, pack the pairs with mclir-make-lmdb and use '
                          f'kind: paired with io_backend: {{type: lmdb}}.')
    sigma, roots = (check_sigma(t.get('sigma'), f'{key}.sigma') if kind == 'denoise' else None), None
    if kind == 'denoise':
        samples = _denoise_samples(key, t)
    elif kind == 'paired':
        samples, roots = _paired_samples(key, t, io)
    else:
        samples = _named_samples(key, kind, t)
    return Task(key, name, kind, repeat, io, samples, sigma, roots)
