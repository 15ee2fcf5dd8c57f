"""i-vector system on data drawn from known models (tiny sizes)."""
import numpy as np
import scipy.linalg

from tfspk.ivector import gmm as gmm_lib
from tfspk.ivector import stats, total_variability as tv


def _frames_from_gmm(rng, c=4, d=3, n=3000):
    means = rng.normal(0, 4, (c, d))
    variances = rng.uniform(0.5, 2.0, (c, d))
    labels = rng.integers(0, c, n)
    return means[labels] + rng.standard_normal((n, d)) * np.sqrt(variances[labels])


def test_ubm_em_log_likelihood_never_decreases():
    rng = np.random.default_rng(0)
    frames = _frames_from_gmm(rng)
    history = []
    ubm = gmm_lib.train_ubm(frames, 4, iters_per_split=5, final_iters=10, progress=False,
                            history=history)
    assert ubm.num_components == 4
    for (c0, ll0), (c1, ll1) in zip(history, history[1:]):
        if c0 == c1:
            assert ll1 >= ll0 - 1e-9, history
    assert np.isclose(ubm.weights.sum(), 1.0)


def test_baum_welch_matches_loops():
    rng = np.random.default_rng(1)
    ubm = gmm_lib.DiagGmm(np.array([0.2, 0.3, 0.5]), rng.normal(0, 1, (3, 2)),
                          rng.uniform(0.5, 1.5, (3, 2)))
    utts = [rng.normal(0, 1, (7, 2)), rng.normal(0, 1, (5, 2))]
    zeroth, first = stats.baum_welch(ubm, utts)
    for u, x in enumerate(utts):
        for c in range(3):
            n, f = 0.0, np.zeros(2)
            for t in range(len(x)):
                lik = [ubm.weights[k] * np.prod(
                    np.exp(-0.5 * (x[t] - ubm.means[k]) ** 2 / ubm.variances[k])
                    / np.sqrt(2 * np.pi * ubm.variances[k])) for k in range(3)]
                g = lik[c] / sum(lik)
                n += g
                f += g * (x[t] - ubm.means[c])
            assert np.isclose(zeroth[u, c], n)
            np.testing.assert_allclose(first[u, c], f, atol=1e-10)
    # top-1 selection: hard assignments
    zeroth1, _ = stats.baum_welch(ubm, utts, top_k=1)
    assert set(np.unique(zeroth1.round(9))) <= set(range(8))


def _stats_from_tv(rng, c=6, d=3, r=2, utts=400, frames_per=60):
    t_true = rng.normal(0, 1.0, (c, d, r))
    variances = rng.uniform(0.5, 1.0, (c, d))
    zeroth = rng.multinomial(frames_per, np.full(c, 1 / c), size=utts).astype(float)
    w = rng.standard_normal((utts, r))
    shift = np.einsum("cdr,ur->ucd", t_true, w)
    noise = rng.standard_normal((utts, c, d)) * np.sqrt(variances * np.maximum(zeroth, 0)[..., None])
    first = zeroth[..., None] * shift + noise
    return t_true, variances, zeroth, first


def test_tv_subspace_recovered_and_objective_increases():
    rng = np.random.default_rng(2)
    t_true, variances, zeroth, first = _stats_from_tv(rng)
    ubm = gmm_lib.DiagGmm(np.full(6, 1 / 6), np.zeros((6, 3)), variances)
    history = []
    model = tv.train_tv(ubm, zeroth, first, 2, num_iters=15, progress=False, history=history)
    assert all(b >= a - 1e-9 for a, b in zip(history, history[1:])), history
    angles = scipy.linalg.subspace_angles(t_true.reshape(-1, 2), model.T.reshape(-1, 2))
    assert np.degrees(angles).max() < 5, np.degrees(angles)


def test_ivector_is_closed_form_posterior_mean():
    rng = np.random.default_rng(3)
    c, d, r = 4, 3, 2
    model = tv.TotalVariability(rng.normal(0, 1, (c, d, r)), rng.normal(0, 1, (c, d)),
                                rng.normal(0, 1, (c, d)), rng.uniform(0.5, 2, (c, d)))
    zeroth = rng.uniform(0, 10, (5, c))
    first = rng.normal(0, 3, (5, c, d))
    got = model.extract(zeroth, first)
    big_t = model.T.reshape(c * d, r)
    inv_sigma = np.diag(1 / model.variances.reshape(-1))
    for u in range(5):
        n_big = np.diag(np.repeat(zeroth[u], d))
        f_tilde = (first[u] - zeroth[u][:, None] * (model.means - model.ubm_means)).reshape(-1)
        want = np.linalg.solve(np.eye(r) + big_t.T @ inv_sigma @ n_big @ big_t,
                               big_t.T @ inv_sigma @ f_tilde)
        np.testing.assert_allclose(got[u], want, rtol=1e-5, atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(4)
    ubm = gmm_lib.DiagGmm(np.array([0.4, 0.6]), rng.normal(0, 1, (2, 3)), np.ones((2, 3)))
    ubm.save(tmp_path / "ubm.npz")
    back = gmm_lib.DiagGmm.load(tmp_path / "ubm.npz")
    np.testing.assert_array_equal(back.means, ubm.means)
    model = tv.init_tv(ubm.means, ubm.variances, 2)
    model.save(tmp_path / "tv.npz")
    np.testing.assert_array_equal(tv.TotalVariability.load(tmp_path / "tv.npz").T, model.T)


def test_cli_stages_write_embeddings(tmp_path):
    from eval import embeddings as embeddings_io
    from eval import ivector as cli
    from eval.extract import LoadedUtterance

    rng = np.random.default_rng(5)
    t = np.arange(16000) / 16000
    utts = [LoadedUtterance(f"u{i}", f"s{i % 2}",
                            (0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t)
                             + 0.01 * rng.standard_normal(16000)).astype(np.float32))
            for i in range(4)]
    common = dict(ubm_path=str(tmp_path / "ubm.npz"), tv_path=str(tmp_path / "tv.npz"),
                  num_components=4, ivector_dim=3, ubm_iters=2, ubm_final_iters=2,
                  tv_iters=2, top_k=2)
    cli.run_stage("train_ubm", utts, **common)
    cli.run_stage("train_tv", utts, **common)
    cli.run_stage("extract", utts, output=str(tmp_path / "iv.npz"), **common)
    loaded = embeddings_io.load_embeddings(tmp_path / "iv.npz", require_speakers=True)
    assert loaded.embeddings.shape == (4, 3)
    assert cli.add_deltas(np.zeros((5, 2))).shape == (5, 6)
