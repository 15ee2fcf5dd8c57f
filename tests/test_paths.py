"""tfspk.paths.list_files: one glob helper; each caller reports no match in its own terms."""
import pytest

from tfspk import data, paths
from tfspk.augment import sources


def test_list_files_sorts_dedupes_and_names_the_patterns(tmp_path):
    for name in ("b.txt", "a.txt"):
        (tmp_path / name).write_text("x")
    pattern = str(tmp_path / "*.txt")
    assert paths.list_files([pattern, str(tmp_path / "a.txt")]) == [
        str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    with pytest.raises(paths.NoMatchingFilesError, match=r"nothing-\*: no shards match"):
        paths.list_files(str(tmp_path / "nothing-*"), "shards")


def test_bad_train_data_glob_is_a_shard_error_not_an_augmentation_error(tmp_path):
    pattern = str(tmp_path / "train-*.tfrecord")
    with pytest.raises(data.ShardFilesError, match="no TFRecord shards match") as raised:
        data.train_dataset(pattern, batch_size=2)
    assert not isinstance(raised.value, sources.AugmentationSourceError)
    with pytest.raises(sources.AugmentationSourceError, match="no noise files match"):
        sources.list_files(str(tmp_path / "noise-*"), "noise files")
