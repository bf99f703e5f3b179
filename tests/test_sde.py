"""SDE coefficients, discretisations, priors and noise schedules against closed forms."""

import numpy as np
import pytest

import scorekit


def test_values_at_half_time():
    vp, sub, ve = scorekit.VPSDE(), scorekit.subVPSDE(), scorekit.VESDE()
    m, s = vp.marginal_coeffs(0.5)
    assert m == pytest.approx(0.281183, abs=1e-6) and s == pytest.approx(0.959654, abs=1e-6)
    assert vp.diffusion(0.5) == pytest.approx(3.170173, abs=1e-6)
    assert sub.marginal_coeffs(0.5)[1] == pytest.approx(0.920936, abs=1e-6)
    assert sub.diffusion(0.5) == pytest.approx(3.160249, abs=1e-6)
    assert ve.marginal_coeffs(0.5)[1] == pytest.approx(0.707107, abs=1e-6)
    assert ve.diffusion(0.5) == pytest.approx(2.918423, abs=1e-6)


def test_karras_and_geometric_sigmas():
    np.testing.assert_allclose(scorekit.karras_sigmas(5, 0.002, 80, 7),
                               [80, 17.5278, 2.51522, 0.169753, 0.002], rtol=2e-6)
    g = scorekit.geometric_sigmas(20, 1, 10)
    assert g[0] == pytest.approx(20) and g[-1] == pytest.approx(1)
    np.testing.assert_allclose(g[1:] / g[:-1], (1 / 20) ** (1 / 9))


def test_marginal_std_solves_the_variance_ode():
    """d Var/dt = 2 f Var + g^2 for the variance of x_t | x_0 (VP, sub-VP, VE)."""
    t = np.linspace(0.05, 0.95, 19)
    h = 1e-6
    for sde in (scorekit.VPSDE(), scorekit.subVPSDE(), scorekit.VESDE()):
        var = lambda u: sde.marginal_coeffs(u)[1] ** 2  # noqa: E731
        lhs = (var(t + h) - var(t - h)) / (2 * h)
        rhs = 2 * sde.drift_coeff(t) * var(t) + sde.diffusion(t) ** 2
        np.testing.assert_allclose(lhs, rhs, rtol=1e-5)
        mean = lambda u: sde.marginal_coeffs(u)[0]  # noqa: E731
        np.testing.assert_allclose((mean(t + h) - mean(t - h)) / (2 * h),
                                   sde.drift_coeff(t) * mean(t), rtol=1e-5, atol=1e-9)


def test_discretisations_match_the_reference_formulas():
    ve, vp = scorekit.VESDE(N=100), scorekit.VPSDE(N=100)
    t = np.array([0.0, 0.5, 1.0])
    x = np.ones((3, 2))
    f, G = ve.discretize(x, t)
    sig = np.exp(np.linspace(np.log(0.01), np.log(50), 100))
    idx = (t * 99).astype(int)
    prev = np.where(idx == 0, 0.0, sig[np.maximum(idx - 1, 0)])
    np.testing.assert_allclose(G, np.sqrt(sig[idx] ** 2 - prev**2))
    assert np.all(f == 0)
    f, G = vp.discretize(x, t)
    betas = np.linspace(0.1 / 100, 20 / 100, 100)
    np.testing.assert_allclose(G, np.sqrt(betas[idx]))
    np.testing.assert_allclose(f, (np.sqrt(1 - betas[idx]) - 1)[:, None] * x)


def test_prior_sampling_and_logp():
    ve = scorekit.VESDE()
    z = ve.prior_sampling((4, 3), seed=1, dtype=np.float64)
    np.testing.assert_array_equal(z, 50 * scorekit.normal((4, 3), seed=1, dtype=np.float64))
    want = -1.5 * np.log(2 * np.pi * 2500) - np.sum(z**2, axis=1) / 5000
    np.testing.assert_allclose(ve.prior_logp(z), want)


@pytest.mark.parametrize("make,pattern", [
    (lambda: scorekit.VESDE(sigma_min=-1), "sigma_min must be finite and > 0"),
    (lambda: scorekit.VESDE(sigma_min=5, sigma_max=1), "sigma_max must be > sigma_min"),
    (lambda: scorekit.VPSDE(N=0), "N must be >= 1"),
    (lambda: scorekit.VPSDE(N=10), "N = 10 is too small"),
    (lambda: scorekit.karras_sigmas(1), "n must be >= 2"),
    (lambda: scorekit.VPSDE().diffusion(np.ones((2, 2))), "t must be a scalar or a"),
])
def test_bad_parameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()
