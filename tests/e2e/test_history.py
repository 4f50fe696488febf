"""bare_module (mclir_basicsr.utils) unwraps torch.compile and DataParallel (slow: torch.compile). The history
copies: unit/methods/mclir/test_history.py."""
import pytest
import torch
from torch import nn

from mclir_basicsr.utils import bare_module


@pytest.mark.e2e  # slow (torch.compile): outside the fast unit tier
def test_bare_module_unwraps_compile_and_dp():
    net = nn.Linear(2, 2)
    assert bare_module(torch.nn.DataParallel(net)) is net
    compiled = torch.compile(net)
    assert bare_module(compiled) is net
