"""Fused sampler steps against scorekit.reference and the score-SDE formulas."""

import numpy as np
import pytest
from conftest import mala_order_case, tolerance
from hypothesis import given
from hypothesis import strategies as st

import scorekit
from scorekit import reference as ref


def arrays(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


@given(B=st.integers(0, 5), D=st.sampled_from([1, 3, 4100]),
       dtype=st.sampled_from([np.float32, np.float64]), per=st.booleans(),
       seed=st.integers(0, 2**64 - 1), counter=st.integers(0, 2**64 - 1),
       offset=st.integers(0, 10**6), data=st.integers(0, 2**32 - 1))
def test_affine_step_matches_reference(B, D, dtype, per, seed, counter, offset, data):
    x, s = arrays((B, D), dtype, data)
    rng = np.random.default_rng(data + 1)
    a, c, g = (rng.uniform(0.5, 1.5, B) if per else 0.7 for _ in range(3))
    got = scorekit.noisy_affine_step(x, s, a, c, g, seed=seed, counter=counter, offset=offset)
    want_x, want_mean = ref.affine_step(x, s, a, c, g, seed=seed, counter=counter, offset=offset)
    tol = 4 * tolerance(dtype)
    np.testing.assert_allclose(got.x, want_x, rtol=tol, atol=tol * 5)
    np.testing.assert_allclose(got.x_mean, want_mean, rtol=tol, atol=tol * 5)
    assert got.x.dtype == dtype


def test_shards_draw_the_noise_of_the_whole_batch(dtype):
    x, s = arrays((6, 7), dtype, 1)
    whole = scorekit.noisy_affine_step(x, s, 1.0, 0.1, 0.5, seed=3, counter=9)
    parts = [scorekit.noisy_affine_step(x[i:i + 2], s[i:i + 2], 1.0, 0.1, 0.5, seed=3, counter=9,
                                        offset=i) for i in (0, 2, 4)]
    np.testing.assert_array_equal(np.concatenate([p.x for p in parts]), whole.x)


@pytest.mark.parametrize("per_sample", [False, True])
def test_corrector_matches_reference(per_sample, dtype):
    x, s = arrays((5, 6000), dtype, 2)
    got_x, got_mean, got_eps = scorekit.corrector_step(x, s, snr=0.16, alpha=0.9, seed=4,
                                                       counter=2, offset=3, per_sample=per_sample)
    want_x, want_mean, want_eps = ref.langevin_corrector(x, s, snr=0.16, alpha=0.9, seed=4,
                                                         counter=2, offset=3,
                                                         per_sample=per_sample)
    np.testing.assert_allclose(got_eps, want_eps, rtol=1e-10 if dtype == np.float64 else 1e-5)
    tol = 4 * tolerance(dtype)
    np.testing.assert_allclose(got_x, want_x, rtol=tol, atol=tol * 5)
    np.testing.assert_allclose(got_mean, want_mean, rtol=tol, atol=tol * 5)
    if not per_sample:
        assert np.all(got_eps == got_eps[0])


def test_predictors_follow_the_score_sde_formulas():
    rng = np.random.default_rng(3)
    x, s = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    t = np.array([0.9, 0.5, 0.2, 0.01])
    z = scorekit.normal((4, 5), seed=1, counter=2, dtype=np.float64)
    col = (slice(None), None)
    for sde in (scorekit.VESDE(), scorekit.VPSDE(), scorekit.subVPSDE()):
        # Euler-Maruyama, dt = -1/N
        f, g = sde.sde(x, t)
        dt = -1.0 / sde.N
        want = x + (f - (g**2)[col] * s) * dt
        got = scorekit.predictor_step(sde, x, s, t, kind="euler_maruyama", seed=1, counter=2)
        np.testing.assert_allclose(got.x_mean, want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got.x, want + (g * np.sqrt(-dt))[col] * z, rtol=1e-12)
        # reverse diffusion
        f, G = sde.discretize(x, t)
        want = x - (f - (G**2)[col] * s)
        got = scorekit.predictor_step(sde, x, s, t, seed=1, counter=2)
        np.testing.assert_allclose(got.x_mean, want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got.x, want + G[col] * z, rtol=1e-12)
        # probability flow: half the score term, no noise
        got = scorekit.predictor_step(sde, x, s, t, seed=1, counter=2, probability_flow=True)
        np.testing.assert_array_equal(got.x, got.x_mean)
        np.testing.assert_allclose(got.x_mean, x - (f - 0.5 * (G**2)[col] * s), rtol=1e-12)
    ve, vp = scorekit.VESDE(), scorekit.VPSDE()
    i = ve.timestep(t)
    sig = ve.discrete_sigmas[i]
    prev = np.where(i == 0, 0, ve.discrete_sigmas[np.maximum(i - 1, 0)])
    got = scorekit.predictor_step(ve, x, s, t, kind="ancestral", seed=1, counter=2)
    want = x + ((sig**2 - prev**2))[col] * s
    np.testing.assert_allclose(got.x_mean, want, rtol=1e-12)
    std = np.sqrt(prev**2 * (sig**2 - prev**2) / sig**2)
    np.testing.assert_allclose(got.x, want + std[col] * z, rtol=1e-12)
    beta = vp.discrete_betas[vp.timestep(t)]
    got = scorekit.predictor_step(vp, x, s, t, kind="ancestral", seed=1, counter=2)
    want = (x + beta[col] * s) / np.sqrt(1 - beta)[col]
    np.testing.assert_allclose(got.x_mean, want, rtol=1e-12)
    np.testing.assert_allclose(got.x, want + np.sqrt(beta)[col] * z, rtol=1e-12)


def test_mala_accept_matches_reference_and_nan_rejects(dtype):
    rng = np.random.default_rng(4)
    B, D = 64, 3
    x = rng.standard_normal((B, D)).astype(dtype)
    prop = (x + 0.5 * rng.standard_normal((B, D))).astype(dtype)
    lp = lambda y: -0.5 * np.sum(y.astype(np.float64) ** 2, axis=1)  # noqa: E731
    sc_x, sc_p = -x, -prop
    lpx, lpp = lp(x), lp(prop)
    lpp[3] = np.nan
    sc_p[5, 1] = np.nan
    state = scorekit.mala_accept(x, sc_x, lpx, prop, sc_p, lpp, 0.1, seed=7, counter=1, offset=2)
    want = ref.mala_accept(x, sc_x, lpx, prop, sc_p, lpp, 0.1, seed=7, counter=1, offset=2)
    np.testing.assert_array_equal(state.accepted, want)
    assert not state.accepted[3] and not state.accepted[5]
    assert 0 < state.accepted.mean() < 1
    np.testing.assert_array_equal(state.x, np.where(state.accepted[:, None], prop, x))
    np.testing.assert_array_equal(state.score, np.where(state.accepted[:, None], sc_p, sc_x))
    np.testing.assert_array_equal(state.logp, np.where(state.accepted, lpp, lpx))


def test_mala_accept_sums_each_norm_chunk_by_chunk(dtype):
    """MALA's squared distances are summed as every row reduction: LaneSum8 over chunks
    of 4096 elements, then the chunks (a case the order decides; conftest)."""
    args, kw = mala_order_case(dtype)
    state = scorekit.mala_accept(*args, **kw)
    assert state.accepted[0]
    np.testing.assert_array_equal(state.x, args[3])
    # with the log ratio one lower (what one LaneSum8 over the row would give) it rejects
    shifted = args[:5] + (args[5] - 1.0, 1.0)
    assert not scorekit.mala_accept(*shifted, **kw).accepted[0]


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda x: scorekit.predictor_step("ve", x, x, 0.5, seed=0), TypeError, "sde must be"),
    (lambda x: scorekit.predictor_step(scorekit.VESDE(), x, x, 0.5, kind="heun", seed=0),
     ValueError, "kind must be one of"),
    (lambda x: scorekit.predictor_step(scorekit.subVPSDE(), x, x, 0.5, kind="ancestral", seed=0),
     ValueError, "ancestral predictor is defined for VESDE and VPSDE"),
    (lambda x: scorekit.predictor_step(scorekit.VESDE(), x, x, 0.5, kind="ancestral", seed=0,
                                       probability_flow=True), ValueError, "no probability-flow"),
    (lambda x: scorekit.corrector_step(x, x[:, :1], snr=0.1, seed=0), ValueError,
     "score must have shape"),
    (lambda x: scorekit.corrector_step(x, x, snr=-1, seed=0), ValueError, "snr must be"),
    (lambda x: scorekit.noisy_affine_step(x, x, 1.0, np.nan, 1.0, seed=0), ValueError,
     "c must be finite"),
    (lambda x: scorekit.noisy_affine_step(x, x, 1.0, 1.0, 1.0, seed=0, offset=-1), ValueError,
     "offset must be"),
    (lambda x: scorekit.mala_accept(x, x, np.zeros(4), x, x, np.zeros(2), 0.1, seed=0),
     ValueError, r"logp_proposal must have shape \(B,\) = \(4,\)"),
    (lambda x: scorekit.mala_propose(x, x, 0.0, seed=0), ValueError, "step_size must be > 0"),
])
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(np.ones((4, 3)))


def test_corrector_with_a_zero_score_does_not_move():
    x = np.ones((2, 3))
    got, mean, eps = scorekit.corrector_step(x, np.zeros((2, 3)), snr=0.1, seed=0)
    np.testing.assert_array_equal(eps, 0.0)
    np.testing.assert_array_equal(got, x)
    got, _, eps = scorekit.corrector_step(x, np.ones((2, 3)), snr=0.0, seed=0)
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda x: scorekit.noisy_affine_step(x, x, 1.0, 0.0, 1.0, seed=1, offset=2**62),
     ValueError, "offset = .* is too large"),
    (lambda x: scorekit.predictor_step(scorekit.VESDE(), x, x, -0.01, seed=0), ValueError,
     r"t must lie in \[0, T\]"),
    (lambda x: scorekit.predictor_step(scorekit.VESDE(), x, x, 1.01, seed=0), ValueError,
     r"t must lie in \[0, T\]"),
    (lambda x: scorekit.predictor_step(scorekit.VESDE(), x, x, np.ones(3) / 2, seed=0),
     ValueError, r"t must be a scalar or have shape \(B,\) = \(4,\)"),
    (lambda x: scorekit.noisy_affine_step(x, x, "2", 1.0, 1.0, seed=0), TypeError, "a must be"),
    (lambda x: scorekit.noisy_affine_step(x, x, True, 1.0, 1.0, seed=0), TypeError, "a must be"),
])
def test_more_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(np.ones((4, 3)))
