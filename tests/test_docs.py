"""The READMEs and docs/ name the tests behind their claims: every test they name exists."""
import ast
import glob
import os.path as osp
import re

from tests.conftest import ROOT


def _test_functions(path):
    return {n.name for n in ast.parse(open(path).read()).body if isinstance(n, ast.FunctionDef)}


def test_every_test_the_readmes_name_exists():
    pages = ['README.md', osp.join('benchmarks', 'README.md')] + glob.glob(osp.join(ROOT, 'docs', '*.md'))
    text = ''.join(open(osp.join(ROOT, p)).read() for p in pages)
    refs = set(re.findall(r'(?:tests/)?(test_\w+\.py)::(test_\w+)', text))
    assert len(refs) > 20
    missing = [f'{f}::{n}' for f, n in sorted(refs)
               if not osp.isfile(osp.join(ROOT, 'tests', f)) or n not in _test_functions(osp.join(ROOT, 'tests', f))]
    assert not missing, missing
