"""The entry points in subprocesses (``mclir_basicsr.train``, ``mclir_basicsr.test``, the probe) refuse bad input in
one line, exit code non-zero, no traceback, and write nothing (a few seconds each, for their imports). The same cases
through the entry points' ``main`` in process: unit/cli/test_entry_point_errors.py."""
import mclir_basicsr  # noqa: F401  (before basicsr)

import pytest

from tests.helpers import (FILE_CASES, FORCE_CASES, assert_nothing_written, assert_refused, case_args,
                           dcpt_demo_options, run_module)


# ---------------------------------------------------------------------------------------------------------------
# end to end: the real entry points in subprocesses
# ---------------------------------------------------------------------------------------------------------------
E2E_CASES = [pytest.param('mclir_basicsr.train', c, p, id=f'train-{i}') for i, c, p in FILE_CASES + FORCE_CASES[:3]] + \
    [pytest.param('mclir_basicsr.test', c, p, id=f'test-{i}') for i, c, p in (FILE_CASES[0], FILE_CASES[2])]


@pytest.mark.e2e
@pytest.mark.parametrize('module, content, parts', E2E_CASES)
def test_e2e_entry_point_refuses_in_one_line_and_writes_nothing(tmp_path, module, content, parts):
    res = run_module(module, case_args(tmp_path, content), cwd=tmp_path)
    prog = 'mclir-train' if module.endswith('train') else 'mclir-test'
    assert_refused(res.returncode, res.stderr, parts, prog=prog)
    assert_nothing_written(tmp_path)


@pytest.mark.e2e
def test_e2e_probe_refuses_k_above_the_training_images(tmp_path, aio_data):
    dcpt_demo_options(tmp_path / 'train.yml', aio_data, 4)
    res = run_module('mclir_basicsr.cli.probe', ['-opt', 'train.yml', '--k', '1000', '--json', 'p.json'], cwd=tmp_path)
    assert_refused(res.returncode, res.stderr, ['--k 1000 is larger than the', 'training images of each split'],
                   prog='mclir-probe-degradation')
    assert not (tmp_path / 'p.json').exists()
