"""Restore your own images with any registered network and checkpoint: :func:`load_restorer` and
:func:`restore_images` (what ``mclir-restore`` runs; docs/restore.md).

Everything that can be refused is refused before the first image is read: the network (type, arguments), the
weights (readable by the weights-only loader, fitting the network: the first missing and unexpected keys are named),
the inputs (they exist and hold images), the outputs (the folder takes files, no output would replace an input, no
two inputs share an output). Then each image is read, restored and written atomically; an image that cannot be read
is skipped with one line and the others go on (the report counts it, and the command exits non-zero).
"""
import cv2
import numpy as np
import os.path as osp
import torch
import yaml
from basicsr.utils.registry import ARCH_REGISTRY
from contextlib import nullcontext
from dataclasses import dataclass

from ..checks.options import OptionError, registered_name
from .images import Picture
from .option_source import WHICH, RestoreError, read_restorer_options, weights_from_option_file
from .tiling import probe_geometry, restore_tiled, run_padded, tile_plan
from .weights import WeightsError, load_weights

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


# ------------------------------------------------------------------------------------------------------ the model
def build_network(net_opt, what):
    """The registered network ``net_opt`` describes (``{type: ..., **arguments}``); ``what`` names its source."""
    if not isinstance(net_opt, dict) or 'type' not in net_opt:
        raise RestoreError(f'{what} must be a mapping with a type, such as {{type: EDSR, num_feat: 64}}.')
    args = {k: v for k, v in net_opt.items() if k != 'type'}
    try:
        cls = registered_name(ARCH_REGISTRY, net_opt['type'], 'network', f'{what} type')
    except OptionError as err:
        raise RestoreError(str(err).replace(' before training (mclir-train --import MODULE)',
                                            ' (mclir-restore --import MODULE)')) from None
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG alone
            return cls(**args)
    except Exception as err:  # noqa: BLE001 - wrong arguments: one line naming them
        raise RestoreError(f'{what}: {net_opt["type"]}({", ".join(f"{k}={v!r}" for k, v in args.items())}) '
                           f'failed: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}'
                           '.') from None


def parse_network_args(text):
    """``--network-args``: YAML or JSON mapping (``'{num_feat: 32, num_block: 4}'``)."""
    try:
        args = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as err:
        raise RestoreError(f'--network-args is not YAML or JSON: {str(err).splitlines()[0]}.') from None
    if not isinstance(args, dict):
        raise RestoreError(f'--network-args must be a mapping such as \'{{num_feat: 32, num_block: 4}}\', got '
                           f'{text!r}.')
    return args


@dataclass
class Restorer:
    """A network ready to restore images, with how to run it."""
    net: torch.nn.Module
    device: torch.device
    in_channels: int
    multiple: int
    scale: int
    tile: int = 0
    overlap: int = 32
    tile_batch: int = 1
    precision: str = 'fp32'
    source: str = ''
    input_mean: tuple = None  # RGB; the network is fed (image - mean) / std (FFA-Net's published weights)
    input_std: tuple = None

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def run(self, image, on_tiles=None):
        """A 1 x C x H x W float tensor in 0..1 (RGB) -> the restored 1 x C x sH x sW tensor on the CPU."""
        image = image.to(self.device)
        if self.input_mean is not None:
            channels = image.shape[1]
            mean = torch.tensor(self.input_mean[:channels], device=self.device).view(1, -1, 1, 1)
            std = torch.tensor(self.input_std[:channels], device=self.device).view(1, -1, 1, 1)
            image = (image - mean) / std
        with torch.no_grad(), self._autocast():
            if self.tile and max(image.shape[-2:]) > self.tile:
                out = restore_tiled(self.net, image, self.multiple, self.scale, self.tile, self.overlap,
                                    self.tile_batch, on_tiles)
            else:
                out = run_padded(self.net, image, self.multiple).float().cpu()
        return out.clamp_(0, 1)

    def restore(self, picture, on_tiles=None):
        """A :class:`Picture` -> the restored :class:`Picture` (same bit depth; alpha carried, resized for SR)."""
        colour = picture.colour  # H x W x C, BGR
        planes = [colour] if colour.shape[2] == self.in_channels else (
            [np.repeat(colour, 3, axis=2)] if self.in_channels == 3 else [colour[..., c:c + 1] for c in range(3)])
        outs = []
        for plane in planes:
            rgb = plane[..., ::-1] if plane.shape[2] == 3 else plane
            tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
            out = self.run(tensor, on_tiles)[0].numpy().transpose(1, 2, 0)
            outs.append(out[..., ::-1] if out.shape[2] == 3 else out)
        out = np.concatenate(outs, axis=2) if len(outs) > 1 else outs[0]
        if picture.grayscale and out.shape[2] == 3:  # a gray photo through a colour network stays gray
            out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2GRAY)[..., None]
        alpha = picture.alpha
        if alpha is not None and self.scale != 1:
            alpha = np.clip(cv2.resize(alpha, (alpha.shape[1] * self.scale, alpha.shape[0] * self.scale),
                                       interpolation=cv2.INTER_CUBIC), 0, 1)
        return Picture(np.ascontiguousarray(out, dtype=np.float32), alpha, picture.depth)

    def tiles_of(self, picture):
        h, w = picture.colour.shape[:2]
        per_plane = len(tile_plan(h, w, self.tile, self.overlap)) if self.tile and max(h, w) > self.tile else 1
        return per_plane * (3 if picture.colour.shape[2] == 3 and self.in_channels == 1 else 1)


def pick_device(name):
    if name in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RestoreError(f'--device {name!r}: use auto, cpu, cuda or cuda:N.') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RestoreError(f'--device {name}: no CUDA device is available here; use --device cpu.')
    return device


def load_restorer(network=None, network_args=None, weights=None, opt_path=None, which='latest', param_key=None,
                  scale=None, device='auto', precision='fp32', tile=0, overlap=32, tile_batch=1,
                  experiments_root=None, input_mean=None, input_std=None):
    """A :class:`Restorer` from an option file (``opt_path``: its ``network_g`` and the experiment's weights,
    ``which`` of :data:`WHICH`) or from ``network`` + ``network_args`` + ``weights``. ``weights`` given with an option
    file replaces the experiment's. ``input_mean`` / ``input_std`` (RGB, 3 numbers each): the network is fed the
    normalised image. Raises :class:`RestoreError` (one line) for anything that does not fit."""
    if precision not in PRECISIONS:
        raise RestoreError(f'--precision {precision!r}: use one of {", ".join(PRECISIONS)}.')
    if which not in WHICH:
        raise RestoreError(f'--which {which!r}: use one of {", ".join(WHICH)}.')
    for flag, value, low in (('--tile', tile, 0), ('--tile-overlap', overlap, 0), ('--tile-batch', tile_batch, 1)):
        if not isinstance(value, int) or value < low:
            raise RestoreError(f'{flag} must be an integer >= {low}, got {value!r}.')
    normalise = input_mean is not None or input_std is not None
    if normalise and (len(input_mean or ()) != 3 or len(input_std or ()) != 3 or min(input_std) <= 0):
        raise RestoreError('--input-mean and --input-std go together, three numbers each (RGB), std > 0.')
    if tile and overlap >= tile:
        raise RestoreError(f'--tile-overlap {overlap} must be smaller than --tile {tile}.')
    if (opt_path is None) == (network is None):
        raise RestoreError('give the model either as -opt OPTION_FILE or as --network TYPE (with --network-args and '
                           '--weights), not both.')
    if opt_path is not None:
        if network_args:
            raise RestoreError('--network-args goes with --network; with -opt the network is network_g of the file.')
        opt = read_restorer_options(opt_path)
        net_opt, what = opt['network_g'], f'-opt {opt_path}: network_g'
        if weights is None:
            weights, key = weights_from_option_file(opt_path, opt, which, experiments_root)
            param_key = param_key or key
    else:
        if weights is None:
            raise RestoreError('--network needs --weights FILE (a checkpoint of that network).')
        net_opt, what = dict(network_args or {}, type=network), '--network'
    if not osp.isfile(str(weights)):
        raise RestoreError(f'the weights file {weights} does not exist.')
    device = pick_device(device)
    net = build_network(net_opt, what)
    try:
        source = load_weights(net, weights, param_key)
    except WeightsError as err:
        raise RestoreError(str(err)) from None
    net.eval().to(device)
    try:
        in_channels, multiple, net_scale = probe_geometry(net, device, scale)
    except Exception as err:  # noqa: BLE001 - GeometryError or a device failure: one line
        raise RestoreError(f'{what} {net_opt["type"]}: {err}') from None
    norm = (tuple(input_mean), tuple(input_std)) if input_mean is not None else (None, None)
    return Restorer(net, device, in_channels, multiple, net_scale, tile, overlap, tile_batch, precision, source, *norm)
