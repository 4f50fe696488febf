"""Shared fixtures (helpers are in tests/helpers.py). ``import mclir_basicsr`` comes first: it makes basicsr
importable on current torchvision."""
import os
import socket

import mclir_basicsr  # noqa: F401  (must precede basicsr)
import numpy as np
import pytest
import torch

from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
from tests.helpers import ROOT  # noqa: F401  (test_docs.py and test_benchmarks.py import ROOT from here)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Nothing in the suite may download: any attempt fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f'network access attempted: {args[:1]}')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A tiny paired x2 dataset from a real photo, as image folders and lmdb (made with our lmdb tool)."""
    import cv2
    from basicsr.utils.matlab_functions import imresize
    from skimage import data as skdata

    from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
    root = tmp_path_factory.mktemp('tiny_data')
    photo = skdata.astronaut()[:, :, ::-1]  # RGB -> BGR as cv2 writes
    for split, count, size in (('train', 6, 48), ('val', 2, 32)):
        for sub in ('gt', 'lq'):
            os.makedirs(root / split / sub)
        for i in range(count):
            y, x = 40 + 60 * i, 100 + 30 * i
            gt = np.ascontiguousarray(photo[y:y + size, x:x + size])
            lq = np.clip(np.round(imresize(gt.astype(np.float32) / 255., 0.5) * 255), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / split / 'gt' / f'{split}{i:02d}.png'), gt)
            cv2.imwrite(str(root / split / 'lq' / f'{split}{i:02d}.png'), lq)
        folders_to_lmdb(str(root / split / 'gt'), str(root / split / 'lq'), str(root / f'{split}_gt.lmdb'),
                        str(root / f'{split}_lq.lmdb'), quiet=True)
    return root


@pytest.fixture(scope='session')
def aio_data(tmp_path_factory):
    """The all-in-one demo data (5 kinds, 40 training images each, 128 px), built once per session."""
    from mclir_basicsr.data.demo_data import build_demo_data
    root = tmp_path_factory.mktemp('aio')
    build_demo_data(root=str(root), tasks=('all_in_one', ), quiet=True)
    return root / 'all_in_one'


@pytest.fixture(scope='session')
def _random_imagenet_vgg(tmp_path_factory):
    """Random VGG11/VGG16 feature weights under torchvision's file names, written once per session."""
    folder = tmp_path_factory.mktemp('pretrained_models')
    for vgg_type, name in (('vgg11', 'vgg11-8a719046.pth'), ('vgg16', 'vgg16-397923af.pth')):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            feats = build_torchvision_vgg_features(vgg_type)
        torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, folder / name)
    return folder


@pytest.fixture
def vgg_home(tmp_path, monkeypatch, _random_imagenet_vgg):
    """A working directory whose experiments/pretrained_models/ holds them, where BasicSR and SPN look for
    ImageNet VGG weights (nothing is downloaded)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'experiments').mkdir()
    os.symlink(_random_imagenet_vgg, tmp_path / 'experiments' / 'pretrained_models')
    return tmp_path
