"""Backends checked against the generative model and textbook definitions."""
import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from tfspk import backend, metrics


class TwoCovarianceModel:
    """y ~ N(mu, B) per speaker, x = y + e with e ~ N(0, W)."""

    def __init__(self, dim, seed=0, within_scale=1.0):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(dim, dim))
        c = rng.normal(size=(dim, dim))
        self.between = a @ a.T / dim + 0.5 * np.eye(dim)
        # Strongly anisotropic within-class noise: what cosine cannot undo.
        scales = np.geomspace(0.05, 3.0, dim) * within_scale
        q = np.linalg.qr(c)[0]
        self.within = (q * scales) @ q.T
        self.mean = rng.normal(size=dim)
        self.dim = dim

    def sample(self, num_speakers, utts_per_speaker, seed):
        rng = np.random.default_rng(seed)
        speakers = rng.multivariate_normal(self.mean, self.between, size=num_speakers)
        noise = rng.multivariate_normal(np.zeros(self.dim), self.within,
                                        size=num_speakers * utts_per_speaker)
        return (np.repeat(speakers, utts_per_speaker, axis=0) + noise,
                np.repeat(np.arange(num_speakers), utts_per_speaker))


def _relative_error(estimate, truth):
    return np.linalg.norm(estimate - truth) / np.linalg.norm(truth)


def _all_pairs(num_enroll, num_test):
    e, t = np.meshgrid(np.arange(num_enroll), np.arange(num_test), indexing="ij")
    return e.ravel(), t.ravel()


def test_plda_em_recovers_two_covariance_model():
    model = TwoCovarianceModel(dim=5)
    x, spk = model.sample(2000, 10, seed=1)
    plda = backend.PLDA(num_em_iters=10).fit(x, spk)
    assert _relative_error(plda.within_covariance, model.within) < 0.05
    assert _relative_error(plda.between_covariance, model.between) < 0.1
    np.testing.assert_allclose(plda.mean, model.mean, atol=0.1)
    # With equal utterance counts the ML estimate has a closed form that EM
    # must converge to: W = scatter / (N - K), B = cov(speaker means) - W / n.
    converged = backend.PLDA(num_em_iters=200).fit(x, spk)
    means = x.reshape(2000, 10, 5).mean(axis=1)
    within_ml = sum(np.cov(group.T, bias=True) * 10
                    for group in x.reshape(2000, 10, 5)) / (2000 * 9)
    between_ml = np.cov(means.T, bias=True) - within_ml / 10
    assert _relative_error(converged.within_covariance, within_ml) < 1e-6
    assert _relative_error(converged.between_covariance, between_ml) < 1e-6
    # The diagonalising transform whitens W and diagonalises B into psi.
    a = converged.transform
    np.testing.assert_allclose(a @ converged.within_covariance @ a.T, np.eye(5), atol=1e-9)
    np.testing.assert_allclose(a @ converged.between_covariance @ a.T, np.diag(converged.psi),
                               atol=1e-9)
    assert np.all(np.diff(converged.psi) <= 0)


@pytest.mark.parametrize("num_enroll_utts", [1, 3])
def test_plda_llr_equals_gaussian_likelihood_ratio(num_enroll_utts):
    """Without length norm, the score is exactly log p(e, t | same) / p(e) p(t)
    under the fitted model, with e the mean of n enrollment utterances."""
    model = TwoCovarianceModel(dim=4, seed=3)
    x, spk = model.sample(300, 6, seed=4)
    plda = backend.PLDA(normalize_length=False).fit(x, spk)
    b, w, mu = plda.between_covariance, plda.within_covariance, plda.mean
    n = num_enroll_utts
    joint = np.block([[b + w / n, b], [b, b + w]])
    rng = np.random.default_rng(5)
    enroll, test = rng.normal(size=(6, 4)) + mu, rng.normal(size=(7, 4)) + mu
    scores = plda.score_matrix(enroll, test, enroll_counts=np.full(6, n))
    for i in range(6):
        for j in range(7):
            expected = (multivariate_normal.logpdf(np.r_[enroll[i], test[j]], np.r_[mu, mu], joint)
                        - multivariate_normal.logpdf(enroll[i], mu, b + w / n)
                        - multivariate_normal.logpdf(test[j], mu, b + w))
            assert scores[i, j] == pytest.approx(expected, abs=1e-8)


def test_plda_scoring_is_symmetric_and_pairs_match_matrix():
    model = TwoCovarianceModel(dim=6, seed=6)
    x, spk = model.sample(200, 5, seed=7)
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(9, 6)), rng.normal(size=(11, 6))
    for normalize_length in (True, False):
        plda = backend.PLDA(normalize_length=normalize_length).fit(x, spk)
        matrix = plda.score_matrix(a, b)
        np.testing.assert_allclose(matrix, plda.score_matrix(b, a).T, atol=1e-10)
        e, t = _all_pairs(9, 11)
        np.testing.assert_allclose(plda.score_pairs(a, b, e, t), matrix.ravel(), atol=1e-10)
        counts = rng.integers(1, 4, size=9)
        np.testing.assert_allclose(plda.score_pairs(a, b, e, t, counts),
                                   plda.score_matrix(a, b, counts).ravel(), atol=1e-10)


def test_plda_beats_cosine_on_two_covariance_data():
    model = TwoCovarianceModel(dim=10, seed=9)
    x, spk = model.sample(500, 8, seed=10)
    evaluation, _ = model.sample(150, 2, seed=11)
    enroll, test = evaluation[0::2], evaluation[1::2]
    e, t = _all_pairs(150, 150)
    labels = (e == t).astype(int)
    plda_backend = backend.make_plda_backend(lda_dim=None).fit(x, spk)
    cosine_backend = backend.make_cosine_backend().fit(x, spk)

    def eer(b):
        return metrics.eer(b.score_pairs(b.enroll(enroll), b.transform(test), e, t), labels)[0]

    plda_eer, cosine_eer = eer(plda_backend), eer(cosine_backend)
    assert plda_eer < 0.7 * cosine_eer, (plda_eer, cosine_eer)


def _discriminant_data(seed, dim=10, rank=2, num_speakers=300, utts=8, anisotropic=False):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0]        # known subspace
    speaker_means = rng.normal(size=(num_speakers, rank)) * 3 @ basis.T
    noise = rng.normal(size=(num_speakers * utts, dim))
    if anisotropic:
        noise = noise * np.geomspace(0.3, 2.0, dim)
    x = np.repeat(speaker_means, utts, axis=0) + noise + 5.0
    return x, np.repeat(np.arange(num_speakers), utts), basis


def test_lda_recovers_known_discriminant_subspace():
    x, spk, basis = _discriminant_data(seed=12)
    lda = backend.LDA(dim=2).fit(x, spk)
    row_space = np.linalg.qr(lda.projection.T)[0]
    cosines = np.linalg.svd(row_space.T @ basis, compute_uv=False)
    assert cosines.min() > 0.995  # principal angles below ~6 degrees
    # Only two directions carry speaker information.
    full = backend.LDA(dim=9).fit(x, spk)
    assert full.between_class_variances[1] > 20 * full.between_class_variances[2]


def test_lda_matches_generalised_eigenproblem():
    x, spk, _ = _discriminant_data(seed=13, rank=4, anisotropic=True)
    lda = backend.LDA(dim=3).fit(x, spk)
    stats = backend.linalg.class_statistics(x, spk)
    centred_means = stats.means - x.mean(axis=0)
    between = (centred_means.T * stats.counts) @ centred_means / len(x)
    within = np.cov(x.T, bias=True) - between
    reference = scipy.linalg.eigh(between, within, eigvals_only=True)[::-1][:3]
    np.testing.assert_allclose(lda.between_class_variances, reference, rtol=1e-8)
    y = lda.transform(x)
    stats_y = backend.linalg.class_statistics(y, spk)
    within_y = sum(np.cov(y[spk == s].T, bias=True) * 8 for s in range(300)) / len(y)
    np.testing.assert_allclose(within_y, np.eye(3), atol=1e-8)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-9)
    between_y = (stats_y.means.T * stats_y.counts) @ stats_y.means / len(y)
    np.testing.assert_allclose(between_y, np.diag(reference), atol=1e-8)


def test_lda_dim_is_capped_by_speakers_and_needs_labels():
    x, spk, _ = _discriminant_data(seed=14, num_speakers=5)
    assert backend.LDA(dim=200).fit(x, spk).output_dim == 4
    with pytest.raises(ValueError, match="speaker labels"):
        backend.LDA().fit(x)
    with pytest.raises(backend.NotFittedError):
        backend.LDA().transform(x)


def test_whitening_and_length_normalization():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(2000, 4)) @ rng.normal(size=(4, 4)) + 3.0
    white = backend.Whitening().fit_transform(x)
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-9)
    norms = np.linalg.norm(backend.LengthNormalization().transform(x), axis=1)
    np.testing.assert_allclose(norms, 2.0)
    unit = backend.LengthNormalization("unit").transform(np.r_[x[:3], np.zeros((1, 4))])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), [1, 1, 1, 0])


def test_backend_enrollment_averaging_and_save_load(tmp_path):
    model = TwoCovarianceModel(dim=12, seed=16)
    x, spk = model.sample(60, 6, seed=17)
    trained = backend.make_plda_backend(lda_dim=8).fit(x, spk)
    assert trained.transforms[1].output_dim == 8
    evaluation, eval_spk = model.sample(10, 4, seed=18)
    # Models from 3 utterances each; test with the 4th.
    enroll_rows = np.flatnonzero(np.arange(40) % 4 != 3)
    enrollment = trained.enroll(evaluation[enroll_rows], eval_spk[enroll_rows])
    np.testing.assert_array_equal(enrollment.counts, np.full(10, 3))
    manual = backend.LengthNormalization().transform(
        trained.transform(evaluation[enroll_rows]).reshape(10, 3, 8).mean(axis=1))
    np.testing.assert_allclose(enrollment.vectors, manual)
    test = trained.transform(evaluation[3::4])
    e, t = _all_pairs(10, 10)
    scores = trained.score_pairs(enrollment, test, e, t)

    trained.save(tmp_path / "plda")
    loaded = backend.Backend.load(tmp_path / "plda")
    assert loaded.describe() == trained.describe()
    again = loaded.score_pairs(loaded.enroll(evaluation[enroll_rows], eval_spk[enroll_rows]),
                               loaded.transform(evaluation[3::4]), e, t)
    np.testing.assert_array_equal(again, scores)
    # A single component saves and loads on its own too.
    trained.scorer.save(tmp_path / "single" / "plda")
    plda = backend.Component.load(tmp_path / "single" / "plda")
    np.testing.assert_array_equal(plda.psi, trained.scorer.psi)


def test_backend_load_errors_name_the_file(tmp_path):
    with pytest.raises(backend.BackendFileError, match="backend.json: file not found"):
        backend.Backend.load(tmp_path)
    backend.make_cosine_backend(subtract_mean=False).save(tmp_path)
    (tmp_path / "backend.json").write_text('{"format_version": 1, "transforms": [], '
                                           '"scorer": {"class": "Nope"}}')
    with pytest.raises(backend.BackendFileError, match="backend.json: unknown .*'Nope'"):
        backend.Backend.load(tmp_path)


def test_znorm_and_tnorm_standardise_cohort_scores():
    rng = np.random.default_rng(19)
    enroll_cohort = rng.normal(size=(5, 40)) * rng.uniform(0.5, 3, size=(5, 1)) + 2
    test_cohort = rng.normal(size=(7, 40)) * 2 - 1
    z = backend.normalize_scores(enroll_cohort, "znorm", enroll_cohort_scores=enroll_cohort)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1)
    # T-norm of the cohort-vs-test matrix (cohort members as enroll rows).
    t = backend.normalize_scores(test_cohort.T, "tnorm", test_cohort_scores=test_cohort)
    np.testing.assert_allclose(t.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(t.std(axis=0), 1)


def test_snorm_asnorm_match_definitions_in_matrix_and_pair_form():
    rng = np.random.default_rng(20)
    scores = rng.normal(size=(5, 7))
    enroll_cohort, test_cohort = rng.normal(size=(5, 30)), rng.normal(size=(7, 30)) * 3

    def stats(cohort, top_n):
        top = np.sort(cohort, axis=1)[:, ::-1][:, :top_n]
        return top.mean(axis=1), top.std(axis=1)

    for method, top_n in (("snorm", 30), ("asnorm", 10)):
        me, se = stats(enroll_cohort, top_n)
        mt, st = stats(test_cohort, top_n)
        expected = 0.5 * ((scores - me[:, None]) / se[:, None]
                          + (scores - mt[None, :]) / st[None, :])
        got = backend.normalize_scores(scores, method, enroll_cohort, test_cohort,
                                       top_n=top_n if method == "asnorm" else None)
        np.testing.assert_allclose(got, expected)
        e, t = _all_pairs(5, 7)
        paired = backend.normalize_scores(scores.ravel(), method, enroll_cohort, test_cohort,
                                          enroll_index=e, test_index=t,
                                          top_n=top_n if method == "asnorm" else None)
        np.testing.assert_allclose(paired, expected.ravel())
    # AS-norm over the whole cohort is S-norm.
    np.testing.assert_allclose(
        backend.normalize_scores(scores, "asnorm", enroll_cohort, test_cohort, top_n=30),
        backend.normalize_scores(scores, "snorm", enroll_cohort, test_cohort))
    with pytest.raises(ValueError, match="needs top_n"):
        backend.normalize_scores(scores, "asnorm", enroll_cohort, test_cohort)
    with pytest.raises(ValueError, match="needs test_cohort_scores"):
        backend.normalize_scores(scores, "tnorm", enroll_cohort)


def test_znorm_removes_per_model_score_offsets():
    """Models whose scores are shifted and scaled differently share one
    threshold after Z-norm, which lowers the pooled EER."""
    rng = np.random.default_rng(21)
    num_models, num_tests, cohort_size = 50, 40, 200
    offsets, scales = rng.normal(size=num_models) * 3, rng.uniform(0.5, 3, size=num_models)
    labels = rng.random((num_models, num_tests)) < 0.2
    raw = (rng.normal(size=(num_models, num_tests)) + 3 * labels) * scales[:, None] \
        + offsets[:, None]
    cohort = rng.normal(size=(num_models, cohort_size)) * scales[:, None] + offsets[:, None]
    normed = backend.normalize_scores(raw, "znorm", enroll_cohort_scores=cohort)
    raw_eer = metrics.eer(raw.ravel(), labels.ravel())[0]
    normed_eer = metrics.eer(normed.ravel(), labels.ravel())[0]
    assert normed_eer < 0.5 * raw_eer
    assert normed_eer == pytest.approx(0.067, abs=0.03)  # Phi(-1.5) for d' = 3
