"""GaussianMixture: exact scores against scorekit.reference, finite differences, samples."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scorekit
from scorekit import reference as ref


def mixture(K, D, diag, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5, 5, (K, D))
    stds = rng.uniform(0.3, 2.0, (K, D) if diag else K)
    weights = rng.uniform(0.1, 1.0, K)
    return means, stds, weights


@given(K=st.integers(1, 6), D=st.integers(1, 9), B=st.integers(0, 5), diag=st.booleans(),
       per_sample=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_matches_reference(K, D, B, diag, per_sample, dtype, seed):
    means, stds, weights = mixture(K, D, diag, seed)
    gm = scorekit.GaussianMixture(means, stds, weights)
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(-8, 8, (B, D)).astype(dtype)
    sigma = rng.uniform(0, 3, B) if per_sample else 0.7
    log_p, score, div = gm.evaluate(x, sigma)
    np.testing.assert_allclose(log_p, ref.gmm_log_prob(means, stds, weights, x, sigma),
                               rtol=1e-12, atol=1e-10)
    want_score = ref.gmm_score(means, stds, weights, x, sigma)
    tol = 1e-6 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(score, want_score, rtol=tol, atol=tol * max(1, np.abs(want_score).max(initial=0)))
    assert score.dtype == dtype and score.shape == x.shape
    np.testing.assert_allclose(div, ref.gmm_score_divergence(means, stds, weights, x, sigma),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(gm.log_prob(x, sigma), log_p)
    np.testing.assert_array_equal(gm.score(x, sigma), score)
    np.testing.assert_array_equal(gm.score_divergence(x, sigma), div)


def test_score_is_the_gradient_of_log_prob_and_divergence_its_trace():
    means, stds, weights = mixture(4, 3, True, seed=3)
    gm = scorekit.GaussianMixture(means, stds, weights)
    x = np.random.default_rng(4).uniform(-4, 4, (6, 3))
    h = 1e-5
    fd = np.empty_like(x)
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        fd[:, j] = (gm.log_prob(x + e, 0.5) - gm.log_prob(x - e, 0.5)) / (2 * h)
    np.testing.assert_allclose(gm.score(x, 0.5), fd, rtol=1e-6, atol=1e-8)
    div = scorekit.divergence(lambda y: gm.score(y, 0.5), x, method="exact")
    np.testing.assert_allclose(gm.score_divergence(x, 0.5), div, rtol=1e-5, atol=1e-7)


def test_single_gaussian_closed_form():
    mu, s = np.array([1.0, -2.0]), 1.5
    gm = scorekit.GaussianMixture(mu[None], s)
    x = np.random.default_rng(5).standard_normal((4, 2))
    v = s**2 + 0.3**2
    np.testing.assert_allclose(gm.score(x, 0.3), -(x - mu) / v, rtol=1e-14)
    np.testing.assert_allclose(gm.score_divergence(x, 0.3), -2 / v, rtol=1e-14)
    np.testing.assert_allclose(gm.log_prob(x, 0.3),
                               -0.5 * np.sum((x - mu) ** 2, axis=1) / v - np.log(2 * np.pi * v),
                               rtol=1e-14)


def test_far_from_every_component_stays_finite():
    gm = scorekit.GaussianMixture([[-5.0, -5.0], [5.0, 5.0]], 1.0, [0.2, 0.8])
    x = np.array([[1e6, -1e6], [40.0, 40.0]])
    log_p, score, div = gm.evaluate(x)
    assert np.all(np.isfinite(log_p)) and np.all(np.isfinite(score)) and np.all(np.isfinite(div))
    np.testing.assert_allclose(score[1], -(x[1] - 5.0), rtol=1e-12)


def test_samples_have_the_mixture_moments_and_do_not_depend_on_n():
    gm = scorekit.GaussianMixture([[-5.0, -5.0], [5.0, 5.0]], [1.0, 0.5], [0.2, 0.8])
    n = 200000
    x = gm.sample(n, seed=3)
    frac = np.mean(x[:, 0] > 0)
    assert abs(frac - 0.8) <= 5 * np.sqrt(0.16 / n)
    upper = x[x[:, 0] > 0]
    np.testing.assert_allclose(upper.mean(axis=0), 5.0, atol=5 * 0.5 / np.sqrt(len(upper)))
    np.testing.assert_allclose(upper.std(axis=0), 0.5, rtol=0.01)
    np.testing.assert_array_equal(gm.sample(10, seed=3), x[:10])
    assert gm.sample(5, seed=3, dtype=np.float32).dtype == np.float32


def test_threads_do_not_change_results(threads):
    means, stds, weights = mixture(7, 5, True, seed=6)
    gm = scorekit.GaussianMixture(means, stds, weights)
    x = np.random.default_rng(7).uniform(-6, 6, (5000, 5))
    scorekit.set_num_threads(1)
    want = gm.evaluate(x, np.linspace(0, 2, 5000))
    scorekit.set_num_threads(2)
    got = gm.evaluate(x, np.linspace(0, 2, 5000))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args,pattern", [
    (([[0.0, 1.0]], [1.0, 2.0, 3.0]), "stds must be"),
    (([[0.0, 1.0]], 0.0), "stds finite and > 0"),
    (([[0.0, np.nan]], 1.0), "means must be finite"),
    (([[0.0], [1.0]], 1.0, [1.0]), r"weights must have shape \(K,\)"),
    (([[0.0], [1.0]], 1.0, [1.0, -1.0]), "weights must be finite and > 0"),
    ((np.zeros((0, 2)), 1.0), "means must have shape"),
])
def test_bad_parameters(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        scorekit.GaussianMixture(*args)


def test_bad_inputs():
    gm = scorekit.GaussianMixture([[0.0, 1.0]], 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\) = \(B, 2\)"):
        gm.score(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="x must be"):
        gm.score(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gm.score(np.zeros((3, 2)), -1.0)
    with pytest.raises(ValueError, match="sigma must be a scalar or have shape"):
        gm.log_prob(np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="n must be >= 0"):
        gm.sample(-1, seed=0)


def test_parameters_are_read_only_and_cannot_be_replaced():
    gm = scorekit.GaussianMixture([[0.0]], 1.0)
    with pytest.raises(AttributeError):
        gm.means = np.zeros((10**3, 1))
    with pytest.raises(ValueError):
        gm.means[0, 0] = 1.0


def test_divergence_stays_accurate_far_from_the_components():
    gm = scorekit.GaussianMixture([[0.0, 0.0, 0.0]], 1e-3)
    x = np.array([[100.0, 0.0, 0.0]])
    np.testing.assert_allclose(gm.score_divergence(x), -3e6, rtol=1e-12)
    gm = scorekit.GaussianMixture([[0.0], [1.0]], 1.0)
    np.testing.assert_allclose(gm.score_divergence(np.array([[1e9]])), -1.0, rtol=1e-9)


@pytest.mark.parametrize("make,pattern", [
    (lambda: scorekit.GaussianMixture([[0.0]], 1e-170), "finite, nonzero square"),
    (lambda: scorekit.GaussianMixture([[0.0]], 1.0).score(np.zeros((1, 1)), 1e200),
     "sigma must have a finite square"),
    (lambda: scorekit.GaussianMixture([[0.0]], 1.0).sample(2, seed=0, dtype=int), "dtype must be"),
])
def test_extreme_parameters(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_huge_weights_are_normalised():
    gm = scorekit.GaussianMixture([[0.0], [1.0]], 1.0, [1e308, 1e308])
    np.testing.assert_allclose(gm.weights, [0.5, 0.5])
    assert np.isfinite(gm.log_prob(np.zeros((1, 1))))[0]
