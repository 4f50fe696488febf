"""--which best reads BasicSR's log: the first metric's best iteration, and whether it was the validation BasicSR runs
after "End of training." (the latest weights; its iteration is past total_iter and has no checkpoint of its own)."""
import pytest

from mclir_basicsr.inference.option_source import _best_iteration


def _val(psnr, psnr_best, psnr_iter, ssim_iter):
    return (f'Validation val\n\t # psnr: {psnr:.4f}\tBest: {psnr_best:.4f} @ {psnr_iter} iter\n'
            f'\t # ssim: 0.8000\tBest: 0.8000 @ {ssim_iter} iter\n')


@pytest.mark.parametrize('log, expected', [
    (_val(30, 30, 10, 10) + _val(29, 30, 10, 20) + 'End of training.\n' + _val(29, 30, 10, 20), (10, False)),
    (_val(30, 30, 10, 10) + 'End of training. Time consumed\n' + _val(31, 31, 32, 10), (32, True)),  # a resumed run
    (_val(30, 30, 10, 10), (10, False)),  # still training
    ('no validation\n', (None, False)),
])
def test_the_best_iteration_and_whether_it_scored_the_latest_weights(log, expected, tmp_path):
    (tmp_path / 'train_x_20261205_000000.log').write_text(log)
    assert _best_iteration(str(tmp_path)) == expected
