"""Shared pytest set-up: quiet TensorFlow, locate shared data."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"


@pytest.fixture(scope="session")
def librispeech_dir():
    if not LIBRISPEECH_DIR.is_dir():
        message = f"real speech not found at {LIBRISPEECH_DIR}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            # In CI a missing corpus must turn the suite red, never into a silent skip.
            pytest.fail(f"{message} (CI=true: shared data is required)")
        pytest.skip(message)
    return LIBRISPEECH_DIR


def build_voxceleb_shards(root, num_speakers, utts_per_speaker, num_test_speakers, seed=0):
    """Synthetic VoxCeleb1-layout corpus -> train/test TFRecord splits (by vox1_meta Set)."""
    from tfspk.shards.build import BuildConfig, build_from_corpus
    from tfspk.synth import corpus

    root = pathlib.Path(root)
    corpus.generate_voxceleb(str(root / "vox"), num_speakers=num_speakers,
                             utts_per_speaker=utts_per_speaker,
                             num_test_speakers=num_test_speakers, seed=seed)
    for split, subset in (("train", "dev"), ("test", "test")):
        build_from_corpus("voxceleb", str(root / "vox"),
                          BuildConfig(str(root / "data"), split, num_shards=2),
                          voxceleb_subset=subset)
    return {"train": str(root / "data" / "train-*.tfrecord"),
            "test": str(root / "data" / "test-*.tfrecord"),
            "trials": str(root / "vox" / "veri_test.txt"),
            "corpus": str(root / "vox")}


@pytest.fixture(scope="session")
def voxceleb_shards(tmp_path_factory):
    """12 training and 6 test synthetic speakers, 8 utterances each, as shards."""
    return build_voxceleb_shards(tmp_path_factory.mktemp("vox"),
                                 num_speakers=18, utts_per_speaker=8, num_test_speakers=6)
