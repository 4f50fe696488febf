"""train.progressive: the option checks, the stage schedule, aligned LQ/GT crops, consistent batch subsets, and
the crop generator's state (what makes a resumed run crop as the uninterrupted one)."""
import pytest
import torch

from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.training.progressive import ProgressivePatches, check_progressive


def _opt(block, scale=1, gt_size=64, batch=8):
    return {'scale': scale, 'train': {'progressive': block},
            'datasets': {'train': {'gt_size': gt_size, 'batch_size_per_gpu': batch}}}


GOOD = {'milestones': [10, 20], 'patch_sizes': [32, 48, 64], 'batch_sizes': [8, 6, 4]}


def test_absent_block_is_none_and_a_good_one_is_returned():
    assert check_progressive({'train': {}}) is None
    assert check_progressive(_opt(GOOD)) == GOOD


@pytest.mark.parametrize('change, opt_kwargs, message', [
    (dict(patch_sizes=[32, 48]), {}, 'one entry per stage and train.progressive.milestones one fewer'),
    (dict(milestones=[20, 10]), {}, 'milestones must increase'),
    (dict(batch_sizes=[8, 0, 4]), {}, r'batch_sizes\[1\] must be >= 1'),
    (dict(patch_sizes=[32, 48, 'big']), {}, r'patch_sizes\[2\] must be an integer'),
    (dict(patch_sizes=[30, 48, 64]), dict(scale=4), r'multiples of scale \(4\); \[30\]'),
    ({}, dict(gt_size=48), 'datasets.train.gt_size \\(48\\) is smaller than the largest'),
    ({}, dict(batch=6), 'datasets.train.batch_size_per_gpu \\(6\\) is smaller than the largest'),
    (dict(patch_size=[1]), {}, 'patch_size'),
])
def test_bad_blocks_name_the_key(change, opt_kwargs, message):
    with pytest.raises(OptionError, match=message):
        check_progressive(_opt(dict(GOOD, **change), **opt_kwargs))


def _restormer(iters=(10, 10, 5), gt_sizes=(32, 48, 64), mini_batch_sizes=(8, 6, 4), **extra):
    train_set = {'gt_size': 64, 'batch_size_per_gpu': 8, 'iters': list(iters), 'gt_sizes': list(gt_sizes),
                 'mini_batch_sizes': list(mini_batch_sizes)}
    return {'scale': 1, 'train': extra.pop('train', {}), 'datasets': {'train': dict(train_set, **extra)}}


def test_restormer_spelling_in_the_dataset_is_an_alias():
    """Restormer's ``iters`` are stage lengths: [10, 10, 5] -> milestones [10, 20] (the last closes the schedule)."""
    assert check_progressive(_restormer()) == GOOD


@pytest.mark.parametrize('opt, message', [
    (_restormer(gt_sizes=(32, 48)), r'datasets\.train\.gt_sizes and datasets\.train\.mini_batch_sizes need one entry '
                                    r'per stage and datasets\.train\.iters one per stage; got 2, 3 and 3'),
    (_restormer(iters=(10, 0, 5)), r'datasets\.train\.iters\[1\] must be >= 1'),
    (_restormer(mini_batch_sizes=(8, 6, 9)), r'batch_size_per_gpu \(8\) is smaller than the largest '
                                             r'datasets\.train\.mini_batch_sizes \(9\)'),
    ({'datasets': {'train': {'iters': [5], 'gt_sizes': [32]}}}, r'also needs datasets\.train\.mini_batch_sizes'),
    (_restormer(train={'progressive': GOOD}), 'both describe progressive training'),
])
def test_restormer_spelling_errors_name_its_keys(opt, message):
    with pytest.raises(OptionError, match=message):
        check_progressive(opt)


def test_stages_start_after_their_milestone():
    sched = ProgressivePatches(**GOOD, seed=0)
    assert [sched.stage(i) for i in (1, 10, 11, 20, 21, 10 ** 6)] == [0, 0, 1, 1, 2, 2]


def test_crops_are_aligned_for_sr_and_the_subset_is_shared():
    sched = ProgressivePatches([5], [16, 32], [3, 2], seed=1)
    lq = torch.arange(8 * 1 * 16 * 16, dtype=torch.float32).view(8, 1, 16, 16)
    gt = torch.nn.functional.interpolate(lq, scale_factor=2, mode='nearest')  # each LQ pixel -> a 2x2 GT block
    label = torch.arange(8)
    out, changed = sched.apply({'lq': lq, 'gt': gt, 'label': label}, current_iter=1)
    assert changed and out['lq'].shape == (3, 1, 8, 8) and out['gt'].shape == (3, 1, 16, 16)
    assert torch.equal(torch.nn.functional.interpolate(out['lq'], scale_factor=2, mode='nearest'), out['gt'])
    assert torch.equal(out['lq'][:, 0, 0, 0] // 256, out['label'].float())  # the same samples everywhere
    out, changed = sched.apply({'lq': lq, 'gt': gt, 'label': label}, current_iter=2)
    assert not changed
    out, changed = sched.apply({'lq': lq, 'gt': gt, 'label': label}, current_iter=6)
    assert changed and out['lq'].shape == (2, 1, 16, 16)  # the full patch: no crop, a subset


def test_the_generator_state_reproduces_the_crops():
    data = {'lq': torch.rand(6, 3, 32, 32), 'gt': torch.rand(6, 3, 32, 32)}
    first = ProgressivePatches([100], [16, 32], [4, 4], seed=3)
    first.apply(data, 1)
    state = first.state_dict()
    expected = [first.apply(data, i)[0]['lq'] for i in (2, 3)]
    second = ProgressivePatches([100], [16, 32], [4, 4], seed=99)
    assert second.load_state_dict(state)
    assert all(torch.equal(second.apply(data, i)[0]['lq'], e) for i, e in zip((2, 3), expected))
    assert not ProgressivePatches([50], [16, 32], [4, 4], seed=3).load_state_dict(state)  # another schedule


def test_all_in_one_dataset_accepts_restormer_keys(aio_data):
    """They are read by the progressive schedule, so the dataset's own key check lets them through."""
    from mclir_basicsr.data.all_in_one_dataset import check_dataset_options
    ds = {'type': 'AllInOneDataset', 'phase': 'train', 'gt_size': 64, 'batch_size_per_gpu': 8, 'iters': [10, 10, 5],
          'gt_sizes': [32, 48, 64], 'mini_batch_sizes': [8, 6, 4],
          'tasks': [{'kind': 'derain', 'dataroot': str(aio_data / 'train' / 'derain')}]}
    check_dataset_options(ds, 'datasets.train')
    with pytest.raises(OptionError, match='Did you mean datasets.train.mini_batch_sizes'):
        check_dataset_options(dict(ds, mini_batch_size=[8]), 'datasets.train')
