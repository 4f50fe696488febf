"""tests.helpers.KeptWeights: a newer file for a key replaces the old one, and no kept file is ever overwritten."""
import os

from tests.helpers import KeptWeights


def test_a_key_keeps_its_newest_file_and_no_file_overwrites_another(tmp_path):
    kept = KeptWeights()
    kept.folder = str(tmp_path / 'kept')
    os.mkdir(kept.folder)
    for i, key in enumerate(['a', 'b', 'a', 'c', 'a', 'b']):
        written = tmp_path / f'w{i}.pth'
        written.write_text(str(i))
        kept[key] = str(written)
        assert not written.exists()
    assert {key: open(path).read() for key, path in kept.items()} == {'a': '4', 'b': '5', 'c': '3'}
    assert len(os.listdir(kept.folder)) == 3
