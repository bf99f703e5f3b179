"""Sampling drivers on exact Gaussian-mixture scores: distributions, likelihoods, shards."""

import numpy as np
import pytest

import scorekit

FIG3 = scorekit.GaussianMixture([[-5.0, -5.0], [5.0, 5.0]], 1.0, [0.2, 0.8])


def uniform_start(n, seed=1):
    return scorekit.uniform((n, 2), seed=seed, dtype=np.float64) * 16 - 8


def fig3_score(x, sigma):
    return FIG3.score(x, sigma)


def test_annealed_langevin_recovers_the_mixture_weights():
    x = scorekit.annealed_langevin(fig3_score, uniform_start(10000), scorekit.geometric_sigmas(20, 1, 10),
                                   n_steps_each=100, step_lr=0.1, seed=3)
    assert abs(np.mean(x[:, 0] < 0) - 0.2) <= 0.03
    plain = scorekit.annealed_langevin(lambda y, s: FIG3.score(y), uniform_start(10000), [1.0],
                                       n_steps_each=1000, step_lr=0.1, seed=3, denoise=False)
    assert abs(np.mean(plain[:, 0] < 0) - 0.2) > 0.1  # plain Langevin keeps the starting split


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_annealed_langevin_keeps_the_dtype(dtype):
    """The final Tweedie step runs in x's dtype: x + (sigma_L^2 rounded to it) * s."""
    x0 = uniform_start(64).astype(dtype)
    args = dict(n_steps_each=2, step_lr=0.1, seed=3)
    x = scorekit.annealed_langevin(fig3_score, x0, [2.0, 0.7], **args)
    assert x.dtype == dtype
    raw = scorekit.annealed_langevin(fig3_score, x0, [2.0, 0.7], denoise=False, **args)
    s = FIG3.score(raw, np.full(64, 0.7)).astype(dtype)
    np.testing.assert_array_equal(x, raw + dtype(0.7**2) * s)


def test_ula_bias_and_mala_removes_it():
    """N(0, v): ULA's stationary variance is v / (1 - h / (2 v)); MALA's is v."""
    v, h, B = 2.0, 1.0, 20000
    score = lambda y, _=None: -y / v  # noqa: E731
    x0 = np.zeros((B, 1))
    ula = scorekit.annealed_langevin(score, x0, [1.0], n_steps_each=300, step_lr=h, seed=5,
                                     denoise=False)
    se = v * np.sqrt(2 / B) * 1.5
    assert abs(ula.var() - v / (1 - h / (2 * v))) <= 5 * se
    res = scorekit.mala(lambda y: -0.5 * np.sum(y**2, axis=1) / v, score, x0, h, n_steps=300,
                        seed=5)
    assert abs(res.x.var() - v) <= 5 * se
    assert 0.5 < res.acceptance_rate.mean() < 1.0 and res.acceptance_rate.shape == (B,)


def _mmd2(a, b, bw=1.0):
    def k(p, q):
        d2 = np.sum((p[:, None, :] - q[None, :, :]) ** 2, axis=2)
        return np.exp(-d2 / (2 * bw**2))
    return k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()


def test_pc_sampler_matches_the_mixture():
    gm = scorekit.GaussianMixture([[-3.0, 0.0], [2.0, 2.0]], [0.7, 1.0], [0.4, 0.6])
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=20, N=300)
    n = 1000
    x = scorekit.pc_sample(lambda y, t: gm.score(y, sde.sigma(t)), sde, (n, 2), snr=0.16,
                           seed=1, dtype=np.float64)
    null = [_mmd2(gm.sample(n, seed=10 + i), gm.sample(n, seed=100 + i)) for i in range(10)]
    assert _mmd2(x, gm.sample(n, seed=7)) <= 3 * max(null)
    assert abs(np.mean(x[:, 0] < -0.5) - 0.4) <= 0.06


def test_probability_flow_likelihood_matches_log_prob():
    gm = scorekit.GaussianMixture([[-2.0, 0.0], [2.0, 1.0]], [0.8, 0.6], [0.5, 0.5])
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=30)
    x = gm.sample(16, seed=2)
    score = lambda y, t: gm.score(y, sde.sigma(t))  # noqa: E731
    eps = 1e-5
    exact = gm.log_prob(x, sde.sigma(eps))
    res = scorekit.log_likelihood(score, sde, x, eps=eps,
                                  divergence_fn=lambda y, t: gm.score_divergence(y, sde.sigma(t)))
    np.testing.assert_allclose(res.log_prob, exact, rtol=0.01)
    np.testing.assert_allclose(res.bits_per_dim, -res.log_prob / (2 * np.log(2)))
    hutch = scorekit.log_likelihood(score, sde, x, eps=eps, seed=3, num_probes=8)
    assert abs(np.mean(hutch.log_prob) - np.mean(exact)) <= 0.05 * abs(np.mean(exact))


def test_ode_sample_maps_the_prior_to_the_mixture():
    gm = scorekit.GaussianMixture([[-3.0, 0.0], [3.0, 0.0]], 0.5, [0.3, 0.7])
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=20)
    res = scorekit.ode_sample(lambda y, t: gm.score(y, sde.sigma(t)), sde, (2000, 2), seed=4,
                              dtype=np.float64)
    assert abs(np.mean(res.x[:, 0] < 0) - 0.3) <= 0.05
    assert res.nfe > 10


def test_vp_pc_sampler_on_a_scaled_mixture():
    """VP marginals: x_t = m x_0 + s z, so score_t(x) = score_{gm, s/m}(x / m) / m."""
    gm = scorekit.GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], 0.4, [0.25, 0.75])
    sde = scorekit.VPSDE(N=300)

    def score(y, t):
        m, s = sde.marginal_coeffs(t)
        return gm.score(y / m[:, None], s / m) / m[:, None]

    x = scorekit.pc_sample(score, sde, (2000, 2), predictor="ancestral", seed=8, dtype=np.float64)
    assert abs(np.mean(x[:, 0] < 0) - 0.25) <= 0.05


@pytest.mark.parametrize("driver", ["annealed", "pc", "mala", "ode"])
def test_a_batch_split_in_two_gives_the_same_samples(driver):
    gm = FIG3
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=20, N=30)
    x0 = uniform_start(8)

    def run(sl, offset):
        if driver == "annealed":
            return scorekit.annealed_langevin(fig3_score, x0[sl], [5.0, 1.0], n_steps_each=5,
                                              step_lr=0.1, seed=2, offset=offset)
        if driver == "pc":
            n = sl.stop - sl.start
            return scorekit.pc_sample(lambda y, t: gm.score(y, sde.sigma(t)), sde, (n, 2),
                                      seed=2, offset=offset, dtype=np.float64,
                                      per_sample_snr=True)  # batch means couple the samples
        if driver == "mala":
            return scorekit.mala(gm.log_prob, gm.score, x0[sl], 0.3, n_steps=20, seed=2,
                                 offset=offset).x
        n = sl.stop - sl.start
        return scorekit.ode_sample(lambda y, t: gm.score(y, sde.sigma(t)), sde, (n, 2), seed=2,
                                   offset=offset, dtype=np.float64).x

    whole = run(slice(0, 8), 0)
    halves = np.concatenate([run(slice(0, 4), 0), run(slice(4, 8), 4)])
    if driver == "ode":  # an adaptive solver's steps depend on the whole state
        np.testing.assert_allclose(halves, whole, rtol=1e-3, atol=1e-3)
    else:
        np.testing.assert_array_equal(halves, whole)


def test_callbacks_and_progress():
    seen = []
    scorekit.annealed_langevin(fig3_score, uniform_start(4), [2.0, 1.0], n_steps_each=3,
                               step_lr=0.1, seed=1, callback=lambda i, x: seen.append(i),
                               progress=True)
    assert seen == list(range(6))


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: scorekit.annealed_langevin(lambda y, s: y[:, :1], uniform_start(3), [1.0],
                                        n_steps_each=1, step_lr=0.1, seed=0),
     ValueError, r"score_fn returned shape \(3, 1\)"),
    (lambda: scorekit.annealed_langevin(fig3_score, uniform_start(3), [1.0, -1.0],
                                        n_steps_each=1, step_lr=0.1, seed=0),
     ValueError, "sigmas must be"),
    (lambda: scorekit.annealed_langevin(fig3_score, uniform_start(3), [1.0], n_steps_each=0,
                                        step_lr=0.1, seed=0), ValueError, "n_steps_each must be"),
    (lambda: scorekit.annealed_langevin(fig3_score, uniform_start(3), [1.0], n_steps_each=1,
                                        step_lr=0.1, seed=0, callback=3), TypeError,
     "callback must be callable"),
    (lambda: scorekit.pc_sample(fig3_score, "ve", (3, 2), seed=0), TypeError, "sde must be"),
    (lambda: scorekit.pc_sample(fig3_score, scorekit.VESDE(N=3), (3, 2), corrector="hmc", seed=0),
     ValueError, "corrector must be"),
    (lambda: scorekit.log_likelihood(fig3_score, scorekit.VESDE(N=3), uniform_start(3)),
     ValueError, "pass seed="),
    (lambda: scorekit.mala(lambda y: np.zeros(2), FIG3.score, uniform_start(3), 0.1, n_steps=1,
                           seed=0), ValueError, r"log_prob_fn returned shape \(2,\)"),
])
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("call,pattern", [
    (lambda: scorekit.annealed_langevin(fig3_score, uniform_start(3), [1.0, 2.0],
                                        n_steps_each=1, step_lr=0.1, seed=0), "non-increasing"),
    (lambda: scorekit.annealed_langevin(fig3_score, uniform_start(3), [1.0], n_steps_each=1,
                                        step_lr=0.0, seed=0), "step_lr must be > 0"),
    (lambda: scorekit.pc_sample(fig3_score, scorekit.VESDE(N=3), (3, 2), eps=1.5, seed=0),
     "eps must be below T"),
    (lambda: scorekit.ode_sample(fig3_score, scorekit.VESDE(N=3), (3, 2), eps=1.5, seed=0),
     "eps must be below T"),
])
def test_driver_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_callbacks_get_a_read_only_view_and_empty_likelihood():
    def cb(i, x):
        assert not x.flags.writeable

    scorekit.annealed_langevin(fig3_score, uniform_start(4), [1.0], n_steps_each=2, step_lr=0.1,
                               seed=1, callback=cb)
    sde = scorekit.VESDE(N=3)
    res = scorekit.log_likelihood(fig3_score, sde, np.zeros((0, 2)), seed=0)
    assert res.log_prob.shape == (0,)
