"""benchmarks/cross_session.py: the target check, and the i-vector stage on real speech
(UBM/T from the training manifest only; features cached for a rerun)."""
import importlib.util
import pathlib

import numpy as np
import pytest

BENCHMARK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "cross_session.py"


@pytest.fixture(scope="module")
def module():
    spec = importlib.util.spec_from_file_location("cross_session", BENCHMARK)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _rows(cnn_cosine, cnn_plda, mfcc_cosine, mfcc_plda, ivector_cosine, ivector_plda):
    rows = []
    for system, cosine, plda in (("CNN fc2", cnn_cosine, cnn_plda),
                                 ("MFCC mean+std", mfcc_cosine, mfcc_plda),
                                 ("i-vector", ivector_cosine, ivector_plda)):
        rows += [{"system": system, "backend": "cosine", "eer": cosine},
                 {"system": system, "backend": "LDA127+PLDA", "eer": plda}]
    return rows


def test_target_uses_the_cnn_best_backend_against_each_baseline_plda(module):
    # Baselines' cosine rows are lower than their PLDA rows here: they must not count.
    result = module.check_target(_rows(0.06, 0.05, 0.01, 0.10, 0.01, 0.12), 0.5)
    assert result["cnn_best_eer"] == 0.05
    assert result["baseline_plda_eer"] == {"MFCC mean+std": 0.10, "i-vector": 0.12}
    assert result["ratio"]["MFCC mean+std"] == pytest.approx(0.5)
    assert result["met"]
    missed = module.check_target(_rows(0.08, 0.09, 0.3, 0.15, 0.3, 0.20), 0.5)
    assert missed["cnn_best_eer"] == 0.08 and not missed["met"]
    with pytest.raises(ValueError, match="no PLDA row for 'i-vector'"):
        module.check_target(_rows(0.1, 0.1, 0.1, 0.1, 0.1, 0.1)[:-1])


def test_ivector_stage_trains_on_train_only_and_reuses_its_features(module, librispeech_dir,
                                                                    tmp_path):
    files = sorted(pathlib.Path(librispeech_dir).glob("*.flac"))[:6]
    for split, chosen in (("train", files[:4]), ("test", files[4:])):
        (tmp_path / f"{split}.tsv").write_text(
            "path\tspeaker\tutt_id\n" +
            "".join(f"{f}\t{f.name.split('-')[0]}\t{f.stem}\n" for f in chosen))
    outputs = [tmp_path / "out" / f"ivector_{s}.npz" for s in ("train", "test")]
    module.ivector_embeddings(tmp_path / "train.tsv", tmp_path / "test.tsv", *outputs,
                              num_components=4, ivector_dim=3, tv_iters=2)
    with np.load(outputs[0]) as train, np.load(outputs[1]) as test:
        assert list(train["ids"]) == [f.stem for f in files[:4]]
        assert list(test["ids"]) == [f.stem for f in files[4:]]
        assert train["embeddings"].shape == (4, 3) and test["embeddings"].shape == (2, 3)
        first = test["embeddings"].copy()
    cache = tmp_path / "out" / "ivector_frames_test.npz"
    assert cache.exists() and (tmp_path / "out" / "ivector_frames_train.npz").exists()
    # A rerun reads the cached features (even with the audio gone) and gives the same
    # i-vectors: the stage is deterministic given its seed.
    (tmp_path / "test.tsv").write_text("path\tspeaker\tutt_id\n/nonexistent.flac\tx\ty\n")
    module.ivector_embeddings(tmp_path / "train.tsv", tmp_path / "test.tsv", *outputs,
                              num_components=4, ivector_dim=3, tv_iters=2)
    with np.load(outputs[1]) as test:
        np.testing.assert_allclose(test["embeddings"], first, rtol=1e-6)
