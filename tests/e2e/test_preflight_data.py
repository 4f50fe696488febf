"""A truncated training image stops ``mclir_basicsr.train`` before anything is written. The data checks in process:
unit/checks/preflight/test_preflight_data.py."""
import shutil

import mclir_basicsr  # noqa: F401  (before basicsr)

import pytest

from tests.helpers import run_module, truncate_file, write_options


# ---- end to end
@pytest.mark.e2e
def test_e2e_truncated_training_image_fails_before_anything_is_written(tmp_path, tiny_data):
    data = tmp_path / 'data'
    shutil.copytree(tiny_data / 'train', data)
    truncate_file(str(data / 'lq' / 'train04.png'))
    opt_file = write_options(tmp_path / 'x.yml', tiny_data, extra={
        'datasets.train.dataroot_gt': str(data / 'gt'), 'datasets.train.dataroot_lq': str(data / 'lq'),
        'datasets.train.io_backend': {'type': 'disk'}})
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode != 0, res.stdout[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith(f'mclir-train: option error: datasets.train.dataroot_lq: {data}/lq/train04.png is '
                               f'truncated'), lines[0]
    assert 'Traceback' not in res.stderr + res.stdout
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()
