"""Pooled features of hooked modules over a labelled dataset, and k-NN degradation classification on them."""
import os.path as osp
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from ...checks.options import OptionError
from ...data.all_in_one_dataset import AllInOneDataset
from ...training.experiment_files import load_tensors_only
from ...utils import few, strip_wrapper_prefixes
from .feature_hooks import FeatureHooks


def build_probe_network(opt, checkpoint=None, param_key='params'):
    """``network_g`` of ``opt``: random initialisation seeded by ``manual_seed`` (default 0), or ``checkpoint``.

    Raises:
        OptionError: ``checkpoint`` is missing, unreadable (truncated, not a PyTorch file), has no ``param_key``
            entry, or does not fit ``network_g`` (another architecture or configuration); the message names
            ``--checkpoint``.
    """
    net_opt = dict(opt['network_g'])
    cls = ARCH_REGISTRY.get(net_opt.pop('type'))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(opt.get('manual_seed') or 0))
        net = cls(**net_opt)
    if checkpoint is not None:
        net.load_state_dict(_checkpoint_fitting(net, opt['network_g']['type'], checkpoint, param_key))
    return net.eval()


def _checkpoint_fitting(net, net_type, checkpoint, param_key):
    """The state dict of ``net`` in ``checkpoint[param_key]`` (wrapper prefixes removed), checked to fit exactly."""
    if not osp.isfile(checkpoint):
        raise OptionError(f'--checkpoint {checkpoint}: no such file.')
    try:
        state = load_tensors_only(checkpoint)
    except Exception as err:  # noqa: BLE001 - any failure: say which file and why
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OptionError(f'--checkpoint {checkpoint}: cannot read it with torch.load(weights_only=True): {first}. '
                          f'It must be a complete PyTorch checkpoint holding tensors (a BasicSR net_g_*.pth); a '
                          f'truncated file comes from an interrupted copy or save.') from None
    if not isinstance(state, dict):
        raise OptionError(f'--checkpoint {checkpoint} holds a {type(state).__name__}, not a state dict.')
    if param_key not in state:
        raise OptionError(f'--checkpoint {checkpoint} has no {param_key!r} entry (it has {few(state)}); '
                          f'use --param-key.')
    entry = state[param_key]
    if not isinstance(entry, dict):
        raise OptionError(f'--checkpoint {checkpoint}: entry {param_key!r} is not a state dict; use --param-key.')
    loaded = {strip_wrapper_prefixes(k): v for k, v in entry.items()}
    want = net.state_dict()
    missing, unexpected = sorted(set(want) - set(loaded)), sorted(set(loaded) - set(want))
    other_shape = sorted(k for k in set(want) & set(loaded)
                         if not hasattr(loaded[k], 'shape') or loaded[k].shape != want[k].shape)
    if missing or unexpected or other_shape:
        parts = [f'{len(other_shape)} tensor(s) of another shape {few(other_shape)}' if other_shape else '',
                 f'{len(missing)} key(s) of the network missing from the file {few(missing)}' if missing else '',
                 f'{len(unexpected)} key(s) in the file that the network lacks {few(unexpected)}' if unexpected else '']
        raise OptionError(f'--checkpoint {checkpoint} does not fit network_g (type {net_type}) of -opt: '
                          + '; '.join(p for p in parts if p) + '. It was saved from another architecture or '
                          'configuration: give as -opt the option file it was trained with.')
    return loaded


def _centre_crop(img, side):
    if not side:
        return img
    h, w = img.shape[-2:]
    if min(h, w) < side:
        raise OptionError(f'--crop {side}: an image is only {h}x{w}.')
    top, left = (h - side) // 2, (w - side) // 2
    return img[..., top:top + side, left:left + side]


def probe_dataset(ds_opt):
    """The labelled images of the ``AllInOneDataset`` block ``ds_opt``, read whole as for validation."""
    return AllInOneDataset(dict(ds_opt, phase='val', name=ds_opt.get('name') or 'probe'))


def dataset_labels(dataset):
    """``(N,)`` label of every image of ``dataset``, from its layout (no image is read)."""
    return torch.tensor([dataset.locate(i)[0] for i in range(len(dataset))], dtype=torch.long)


def extract_features(net, dataset, hook_names, crop=0):
    """``(features (N, D), labels (N,), class names, hooked module names)``: each image of ``dataset`` through
    ``net``; every hooked output averaged over space, L2-normalised, concatenated."""
    hooks = FeatureHooks(net, hook_names)
    feats, labels = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            with hooks.capture() as outputs:
                net(_centre_crop(item['lq'], crop).unsqueeze(0))
            if not outputs:
                raise OptionError(f'hook_names {hook_names}: none of {", ".join(hooks.names)} ran in a forward pass.')
            pooled = [F.normalize(_pool(o), dim=1) for o in outputs]
            feats.append(torch.cat(pooled, dim=1)[0])
            labels.append(item['label'])
    hooks.remove()
    return torch.stack(feats), torch.tensor(labels), dataset.task_names, hooks.names


def _pool(output):
    """(1, C) spatial mean of an NCHW feature, token mean of (N, L, C)."""
    return output.mean(dim=(-2, -1)) if output.dim() == 4 else output.mean(dim=1)


def stratified_split(labels, test_fraction, seed):
    """Indices ``(train, test)``: in every class, round(fraction * count) (at least 1, leaving 1) go to test."""
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().view(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = min(max(1, round(test_fraction * len(idx))), len(idx) - 1)
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return torch.tensor(train), torch.tensor(test)


def knn_predict(train_x, train_y, test_x, k):
    """Majority label of the ``k`` most cosine-similar training samples (rows are unit-normalised per hooked
    module, so the dot product ranks like the cosine); a tie goes to the class of the nearest among the tied."""
    sims = test_x @ train_x.T
    k = min(k, len(train_y))
    top = sims.topk(k, dim=1).indices
    preds = []
    for row in top:
        votes = torch.bincount(train_y[row], minlength=int(train_y.max()) + 1)
        best = (votes == votes.max()).nonzero().view(-1).tolist()
        preds.append(next(int(train_y[j]) for j in row if int(train_y[j]) in best))
    return torch.tensor(preds)


def _stats(values):
    return {'mean': sum(values) / len(values), 'min': min(values), 'max': max(values), 'per_split': values}


def knn_report(feats, labels, names, k=5, test_fraction=0.33, splits=5):
    """Accuracy (%) overall and per class over ``splits`` seeded stratified splits."""
    if len(labels.unique()) < 2:
        raise OptionError('the probe needs images of at least two degradations (tasks).')
    overall, per_class = [], {n: [] for n in names}
    for seed in range(splits):
        train, test = stratified_split(labels, test_fraction, seed)
        pred = knn_predict(feats[train], labels[train], feats[test], k)
        truth = labels[test]
        overall.append(float((pred == truth).float().mean() * 100))
        for c, name in enumerate(names):
            mask = truth == c
            if mask.any():
                per_class[name].append(float((pred[mask] == c).float().mean() * 100))
    return {'k': k, 'test_fraction': test_fraction, 'splits': splits, 'samples': len(labels), 'classes': names,
            'chance': 100. / len(names), 'accuracy': _stats(overall),
            'per_class': {n: _stats(v) for n, v in per_class.items() if v}}
