"""train.history.adaptive on 2 DDP CPU processes (torchrun, gloo): the refresh decisions and the automatic SPN
weight are the same on every rank. Its keys, refreshes and state in process:
unit/methods/mclir/test_adaptive_refresh.py."""
import os

import pytest

from tests.helpers import adaptive_history, rank_lines, torchrun, write_options


@pytest.mark.e2e
def test_adaptive_refresh_and_auto_spn_weight_are_the_same_on_every_ddp_rank(tmp_path, tiny_data):
    """Each rank sees other images, so its own spread and loss ratio differ; the all-reduced statistics make every
    rank refresh the same copy at the same iteration and use the same automatic SPN weight (spn_opt.loss_weight:
    auto): net_g and every copy stay bit-identical after every step."""
    write_options(tmp_path / 'train.yml', tiny_data, name='adaptive', total_iter=5,
                  extra={'logger.save_checkpoint_freq': 100, 'val.val_freq': 100,
                         'train.history': adaptive_history(threshold=0.05, periods=(None, None)),
                         'train.spn_opt.loss_weight': 'auto', 'train.spn_opt.target_ratio': 0.05})
    port = 29500 + (os.getpid() + 600) % 1000
    res = torchrun(tmp_path, ['--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], port)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ranks = [rank_lines(tmp_path / 'run', r) for r in (0, 1)]
    assert [line['iter'] for line in ranks[0]] == [1, 2, 3, 4, 5] and ranks[0] == ranks[1]
    assert len({tuple(line['copies']) for line in ranks[0]}) > 1  # copies were refreshed on the way
