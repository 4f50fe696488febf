"""The demo's verdict: a difference between arms counts as an effect only when every seed agrees on its sign and its
mean exceeds what seeds alone move the baseline; the table shows mean ± std and every seed."""
import pytest

from mclir_basicsr.cli.demo_report import format_table, summarise, verdict


def rows(base, spn, inp=None):
    out = [dict(task='sr_x2', method='bicubic input', seed=10, train_s=None, psnr=30.0, ssim=0.8)] if inp else []
    for seed, (b, s) in enumerate(zip(base, spn), 10):
        out += [dict(task='sr_x2', method='baseline (L1)', seed=seed, train_s=10.0, psnr=b, ssim=0.9),
                dict(task='sr_x2', method='SPN (L1 + SPN, 2 copies)', seed=seed, train_s=50.0, psnr=s, ssim=0.91)]
    return out


def test_a_difference_inside_the_seed_spread_is_called_noise():
    table, lines = summarise(rows([32.5, 32.3, 32.7], [32.2, 32.3, 32.7]), [10, 11, 12])
    assert lines == ['sr_x2: seeds alone move baseline over 0.400 dB; SPN - baseline is -0.100 dB on average '
                     '(-0.300 to +0.000 over 3 seeds): within seed noise, so this run cannot tell SPN from baseline.']
    assert [r['method'] for r in table] == ['baseline (L1)', 'SPN (L1 + SPN, 2 copies)', 'SPN - baseline']
    assert table[2]['per_seed'] == pytest.approx([-0.3, 0.0, 0.0])


def test_one_sign_and_beyond_the_spread_is_an_effect_either_way():
    assert verdict('sr_x2', 'SPN', 'baseline', [0.3, 0.25, 0.35], [32.5, 32.45, 32.55]).endswith(
        'beyond seed noise, so at this scale SPN raises PSNR.')
    assert verdict('sr_x2', 'SPN', 'baseline', [-0.3, -0.25, -0.35], [32.5, 32.45, 32.55]).endswith(
        'beyond seed noise, so at this scale SPN lowers PSNR.')
    # larger than the spread but not of one sign: noise
    mixed = verdict('sr_x2', 'SPN', 'baseline', [0.5, 0.5, -0.05], [32.5, 32.45, 32.55])
    assert mixed.endswith('within seed noise, so this run cannot tell SPN from baseline.')
    assert 'from one seed, which cannot separate an effect from seed noise' in verdict('t', 'a', 'b', [0.4], [30.0])


def test_the_table_shows_the_input_mean_std_and_every_seed():
    table, _ = summarise(rows([32.5, 32.7], [32.6, 32.8], inp=True), [10, 11])
    text = format_table(table).splitlines()
    assert text[2] == ('| sr_x2                    | bicubic input              |           30.000 |           0.8000 '
                       '| -                       |          - |')
    assert '|   32.600 ± 0.141 |  0.9000 ± 0.0000 | 32.500 32.700           |       10 s |' in text[3]
    assert '|   +0.100 ± 0.000 | +0.0100 ± 0.0000 | +0.100 +0.100           |          - |' in text[5]
