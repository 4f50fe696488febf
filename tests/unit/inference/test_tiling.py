"""Whole or tiled: the network's geometry found by probing, and tiles equal to the whole image when the receptive
field fits in half the overlap (blended seams, any batch of tiles); a smaller overlap shows the seams."""
import pytest
import torch
from basicsr.archs.edsr_arch import EDSR
from torch import nn

from mclir_basicsr.inference.tiling import GeometryError, image_of, probe_geometry, restore_tiled, run_padded


class _UNet(nn.Module):
    """Two stride-2 levels: needs sizes that are multiples of 4 (no padding of its own)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1))
        self.up = nn.Sequential(nn.ConvTranspose2d(8, 8, 2, 2), nn.ConvTranspose2d(8, 3, 2, 2))

    def forward(self, x):
        return x + self.up(self.down(x))


class _Gray(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, 1, 1)

    def forward(self, x):
        return self.conv(x)


def _edsr(scale=2):
    torch.manual_seed(0)
    return EDSR(3, 3, num_feat=8, num_block=1, upscale=scale).eval()


def test_geometry_is_found_by_probing():
    cpu = torch.device('cpu')
    assert probe_geometry(_edsr(2), cpu) == (3, 1, 2)
    assert probe_geometry(_edsr(4), cpu) == (3, 1, 4)
    assert probe_geometry(_UNet().eval(), cpu) == (3, 4, 1)
    assert probe_geometry(_Gray().eval(), cpu) == (1, 1, 1)
    with pytest.raises(GeometryError, match='--scale 3, but the network upscales by 2'):
        probe_geometry(_edsr(2), cpu, scale=3)


def test_padding_to_the_multiple_is_cropped_back():
    image = torch.rand(1, 3, 37, 45)
    out = run_padded(_UNet().eval(), image, 4)
    assert out.shape == image.shape


def test_the_restored_image_is_found_in_what_a_network_returns():
    x = torch.rand(1, 3, 4, 4)
    assert image_of({'output': x}) is x
    assert image_of([torch.rand(1, 3, 4, 4), x]) is x
    assert image_of(((torch.rand(1, 3, 2, 2), x), 'log')) is x


@pytest.mark.parametrize('tile, overlap, batch', [(24, 16, 1), (32, 16, 3), (20, 24, 4)])
def test_tiles_equal_the_whole_image_when_the_receptive_field_fits(tile, overlap, batch):
    """EDSR with one block reaches 6 input pixels: overlap 16 (8 each side of a seam) is enough."""
    torch.manual_seed(1)
    image = torch.rand(1, 3, 61, 83)
    net = _edsr(2)
    with torch.no_grad():
        whole = run_padded(net, image, 1)
        calls = []
        tiled = restore_tiled(net, image, 1, 2, tile, overlap, batch, on_tiles=calls.append)
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert sum(calls) == -(-61 // tile) * -(-83 // tile) and max(calls) <= batch


def test_an_overlap_smaller_than_the_receptive_field_shows_the_seams():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 61, 83)
    net = _edsr(2)
    with torch.no_grad():
        whole = run_padded(net, image, 1)
        tiled = restore_tiled(net, image, 1, 2, 24, 2, 1)
    assert (tiled - whole).abs().max() > 1e-3


def test_the_network_only_ever_sees_windows_of_the_tile_s_size():
    """What bounds memory: no forward pass on more than ``tile + 2 * overlap`` pixels a side, however large the
    image."""
    seen = []

    class Recorded(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _edsr(2)

        def forward(self, x):
            seen.append(tuple(x.shape))
            return self.net(x)

    with torch.no_grad():
        restore_tiled(Recorded(), torch.rand(1, 3, 300, 410), 1, 2, 64, 8, 4)
    assert len(seen) == 9 and sum(s[0] for s in seen) == 5 * 7  # 35 tiles, 4 a batch
    assert {s[-2:] for s in seen} == {(64 + 2 * 8, 64 + 2 * 8)}
