"""README.md's demo table is what a fresh clone's ``make demo`` prints, digit for digit (times excepted): the demo
runs here from scratch (data built anew, default settings) and its table and noise line are compared with the
README's. The numbers hold for the pinned versions (requirements/constraints.txt) on the 2-core x86 CPU machine
they were measured on; with other versions installed the comparison is skipped, except in CI, which installs the
pins and so must match."""
import os
import os.path as osp
import re
import subprocess
import sys
from importlib import metadata

import pytest

from tests.helpers import ROOT
from tests.unit.test_pins import _normal, pins

DEMO_SECONDS = 900  # the demo takes about five minutes on 2 cores


def readme_demo_block():
    """The README's demo table rows (header included) and its noise lines, as printed by the demo."""
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    block = text.split('<!-- demo-table -->')[1].split('<!-- /demo-table -->')[0]
    return [line for line in block.splitlines() if line.startswith('|') or line.startswith('sr_x2:')]


def without_times(lines):
    """Each table row without its last cell (the train time, which varies from run to run)."""
    return [re.sub(r'\|[^|]*\|$', '|', line) if line.startswith('|') else line for line in lines]


def unpinned_packages():
    differ = []
    for name, version in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment does not use (the lock covers every extra)
        if installed != version and _normal(name) not in {'pip', 'setuptools'}:
            differ.append(f'{name} {installed} (pinned {version})')
    return differ


def test_the_readme_block_is_there_and_parses():
    lines = readme_demo_block()
    assert lines[0].startswith('| task') and sum(line.startswith('| sr_x2') for line in lines) >= 4
    assert any(line.startswith('sr_x2: seeds alone move') for line in lines)
    assert without_times(['| a | b | 12 s |']) == ['| a | b |']


@pytest.mark.e2e
def test_the_readme_demo_table_is_what_make_demo_prints(tmp_path):
    differ = unpinned_packages()
    if differ and not os.environ.get('CI'):
        pytest.skip('the README numbers were measured with the pinned versions; installed: ' + ', '.join(differ[:5]))
    assert not differ, f'CI installs requirements/constraints.txt, yet: {differ}'
    os.symlink(osp.join(ROOT, 'options'), tmp_path / 'options')
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    run = subprocess.run([sys.executable, '-m', 'mclir_basicsr.demo'], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=DEMO_SECONDS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(tmp_path / 'results' / 'demo_summary.md') as f:
        printed = [line for line in f.read().splitlines() if line]
    assert printed == [line for line in run.stdout.splitlines() if line in printed]  # the file is what it printed
    assert without_times(printed) == without_times(readme_demo_block()), (
        'README.md\'s demo table differs from what make demo prints now:\n' + '\n'.join(printed))
