"""Sharding-invariant noise: one call on a whole batch equals the concatenation of
calls on its shards (each with its offset), for every noise-drawing kernel."""

import numpy as np
import pytest

import scorekit

B, SHAPE = 7, (3, 5)
CUTS = [(0, 3), (3, 4), (4, 7)]  # uneven shards


def data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, *SHAPE)).astype(dtype),
            rng.standard_normal((B, *SHAPE)).astype(dtype),
            rng.standard_normal((B, 2, *SHAPE)).astype(dtype),
            rng.uniform(0.1, 2.0, B).astype(dtype))


def kernels(dtype):
    x, s, jvp, sig = data(dtype)
    kw = dict(seed=11, counter=4)
    return {
        "normal": lambda a, b: scorekit.normal((b - a, *SHAPE), dtype=dtype, offset=a, **kw),
        "uniform": lambda a, b: scorekit.uniform((b - a, *SHAPE), dtype=dtype, offset=a, **kw),
        "rademacher": lambda a, b: scorekit.rademacher((b - a, *SHAPE), dtype=dtype, offset=a,
                                                      **kw),
        "probes": lambda a, b: scorekit.probes((b - a, *SHAPE), kind="sphere", dtype=dtype,
                                               num_probes=2, offset=a, **kw),
        "perturb": lambda a, b: scorekit.perturb(x[a:b], sig[a:b], offset=a, **kw),
        "langevin_step": lambda a, b: scorekit.langevin_step(x[a:b], s[a:b], sig[a:b], offset=a,
                                                             **kw),
        "dsm_loss": lambda a, b: np.concatenate(
            [np.atleast_1d(r).reshape(b - a, -1) for r in
             scorekit.dsm_loss(s[a:b], sig[a:b], reduction="none", offset=a, **kw)], axis=1),
        "ssm_loss": lambda a, b: np.concatenate(
            [np.atleast_1d(r).reshape(b - a, -1) for r in
             scorekit.ssm_loss(s[a:b], jvp[a:b], reduction="none", kind="rademacher",
                               variance_reduction=False, offset=a, **kw)], axis=1),
        "noisy_affine_step": lambda a, b: scorekit.noisy_affine_step(
            x[a:b], s[a:b], 0.9, sig[a:b], 0.3, offset=a, **kw).x,
        "corrector_step": lambda a, b: scorekit.corrector_step(
            x[a:b], s[a:b], snr=0.2, per_sample=True, offset=a, **kw)[0],
        "mala_propose": lambda a, b: scorekit.mala_propose(x[a:b], s[a:b], 0.1, offset=a, **kw),
    }


@pytest.mark.parametrize("name", sorted(kernels(np.float32)))
def test_shards_equal_the_whole_batch(name, dtype):
    fn = kernels(dtype)[name]
    whole = fn(0, B)
    shards = np.concatenate([fn(a, b) for a, b in CUTS])
    np.testing.assert_array_equal(shards, whole)


def test_perturb_and_dsm_shards_share_their_noise():
    x, s, _, sig = data(np.float32, 1)
    z = scorekit.normal(x.shape, seed=2, counter=1, offset=0)
    part = scorekit.perturb(x[3:], sig[3:], seed=2, counter=1, offset=3)
    np.testing.assert_allclose(part, x[3:] + sig[3:, None, None] * z[3:], rtol=1e-6)
    loss, _ = scorekit.dsm_loss(-z[3:] / sig[3:, None, None], sig[3:], seed=2, counter=1,
                                offset=3, reduction="none")
    np.testing.assert_allclose(loss, 0.0, atol=1e-10)


def test_offset_is_validated():
    with pytest.raises(ValueError, match="offset must be in"):
        scorekit.perturb(np.ones((2, 3), np.float32), 1.0, seed=0, offset=-1)
    with pytest.raises(ValueError, match="offset = .* is too large"):
        scorekit.normal((2, 3), seed=0, offset=2**62)
    with pytest.raises(ValueError, match="apply only with seed="):
        scorekit.dsm_loss(np.ones((2, 3)), 1.0, noise=np.ones((2, 3)), offset=1)
