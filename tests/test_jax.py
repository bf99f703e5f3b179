"""scorekit.jax: the NumPy API's bits under jit, gradients, traced counters, errors."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
sj = pytest.importorskip("scorekit.jax")

import jax.numpy as jnp
import scorekit
from jax.test_util import check_grads

B, SHAPE = 5, (3, 4)
KW = dict(seed=2**64 - 3, counter=9)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    with jax.enable_x64(request.param == np.float64):
        yield request.param


def arrays(dtype, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((B, *SHAPE)).astype(dtype) for _ in range(n)]


def sigmas(dtype):
    return np.linspace(0.2, 1.4, B).astype(dtype)


def test_noise_and_probes_match_numpy(dtype):
    for name in ("normal", "uniform", "rademacher"):
        got = getattr(sj, name)((B, *SHAPE), dtype=dtype, offset=4, **KW)
        want = getattr(scorekit, name)((B, *SHAPE), dtype=dtype, offset=4, **KW)
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.asarray(got), want)
    got = jax.jit(lambda c: sj.probes((B, *SHAPE), kind="sphere", dtype=dtype, num_probes=2,
                                      seed=3, counter=c))(jnp.int32(5))
    np.testing.assert_array_equal(
        np.asarray(got), scorekit.probes((B, *SHAPE), kind="sphere", dtype=dtype, num_probes=2,
                                         seed=3, counter=5))


def test_kernels_match_numpy_under_jit(dtype):
    x, s, _ = arrays(dtype)
    sig = sigmas(dtype)

    @jax.jit
    def run(x, s, sig, counter):
        kw = dict(seed=KW["seed"], counter=counter)
        return (sj.perturb(x, sig, scale=0.7, offset=3, **kw),
                sj.langevin_step(x, s, sig, offset=1, **kw),
                sj.noisy_affine_step(x, s, 0.9, sig, 0.3, offset=2, **kw))

    p, l, step = run(x, s, sig, 9)
    np.testing.assert_array_equal(np.asarray(p), scorekit.perturb(x, sig, scale=0.7, offset=3,
                                                                  **KW))
    np.testing.assert_array_equal(np.asarray(l), scorekit.langevin_step(x, s, sig, offset=1, **KW))
    want = scorekit.noisy_affine_step(x, s, 0.9, sig, 0.3, offset=2, **KW)
    np.testing.assert_array_equal(np.asarray(step.x), want.x)
    np.testing.assert_array_equal(np.asarray(step.x_mean), want.x_mean)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_and_gradients_match_numpy(dtype, reduction):
    _, s, noise = arrays(dtype)
    rng = np.random.default_rng(1)
    jvp = rng.standard_normal((B, 2, *SHAPE)).astype(dtype)
    trace = rng.standard_normal(B).astype(dtype)
    sig = sigmas(dtype)
    cases = [
        (lambda s: sj.dsm_loss(s, sig, reduction=reduction, offset=6, **KW), (s,),
         scorekit.dsm_loss(s, sig, reduction=reduction, offset=6, **KW)),
        (lambda s: sj.dsm_loss(s, 0.5, noise=noise, weight=sig, reduction=reduction), (s,),
         scorekit.dsm_loss(s, 0.5, noise=noise, weight=sig, reduction=reduction)),
        (lambda s, j: sj.ssm_loss(s, j, kind="rademacher", variance_reduction=False,
                                  reduction=reduction, offset=1, **KW), (s, jvp),
         scorekit.ssm_loss(s, jvp, kind="rademacher", variance_reduction=False,
                           reduction=reduction, offset=1, **KW)),
        (lambda s, t: sj.ism_loss(s, t, reduction=reduction), (s, trace),
         scorekit.ism_loss(s, trace, reduction=reduction)),
    ]
    for fn, inputs, want in cases:
        forward_only = jax.jit(fn)(*inputs)  # the kernel without its gradients
        np.testing.assert_array_equal(np.asarray(forward_only), np.asarray(want[0], dtype=dtype))
        loss, vjp = jax.vjp(jax.jit(fn), *inputs)
        assert loss.dtype == dtype and loss.shape == ((B,) if reduction == "none" else ())
        np.testing.assert_array_equal(np.asarray(loss), np.asarray(want[0], dtype=dtype))
        for got, grad in zip(vjp(jnp.ones_like(loss)), want[1:]):
            np.testing.assert_array_equal(np.asarray(got), grad)


def test_check_grads_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        x, s = (jnp.asarray(rng.standard_normal((4, 3))) for _ in range(2))
        sig = jnp.asarray(rng.uniform(0.3, 1.0, 4))
        jvp = jnp.asarray(rng.standard_normal((4, 2, 3)))
        kw = dict(order=1, modes=("rev",))
        for reduction in ("mean", "sum", "none"):
            check_grads(lambda s: sj.dsm_loss(s, sig, seed=5, reduction=reduction), (s,), **kw)
            check_grads(lambda s, j: sj.ssm_loss(s, j, seed=5, kind="sphere",
                                                 variance_reduction=False, reduction=reduction),
                        (s, jvp), **kw)
            check_grads(lambda s, t: sj.ism_loss(s, t, reduction=reduction), (s, sig), **kw)
        check_grads(lambda x, sg, sc: sj.perturb(x, sg, scale=sc, seed=3, counter=2),
                    (x, sig, jnp.float64(0.8)), **kw)
        check_grads(lambda x, sg, sc: sj.perturb(x, sg, scale=sc, seed=3, offset=4),
                    (x, jnp.float64(0.4), sig), **kw)
        check_grads(lambda x, s: sj.langevin_step(x, s, sig, seed=3), (x, s), **kw)
        check_grads(lambda x, s: sj.noisy_affine_step(x, s, sig, 0.3, 0.1, seed=3), (x, s), **kw)


def test_traced_counter_does_not_retrace():
    traces = []

    @jax.jit
    def step(x, counter):
        traces.append(1)
        return sj.langevin_step(x, -x, 0.1, seed=1, counter=counter)

    x = jnp.ones((3, 2), dtype=jnp.float32)
    outs = [np.asarray(step(x, jnp.uint32(c))) for c in range(4)]
    assert len(traces) == 1
    for c, out in enumerate(outs):
        np.testing.assert_array_equal(out, scorekit.langevin_step(np.ones((3, 2), np.float32),
                                                                  -np.ones((3, 2), np.float32),
                                                                  0.1, seed=1, counter=c))
    assert not np.array_equal(outs[0], outs[1])


def test_grad_of_a_training_step():
    """jax.grad through perturb -> model -> dsm_loss equals the hand-written chain rule."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((8, 2)), dtype=jnp.float32)
    sigma = jnp.asarray(rng.uniform(0.2, 1.0, 8), dtype=jnp.float32)
    w = jnp.asarray(rng.standard_normal((2, 2)), dtype=jnp.float32)

    def loss(w, counter):
        xt = sj.perturb(x, sigma, seed=4, counter=counter)
        return sj.dsm_loss(xt @ w, sigma, seed=4, counter=counter)

    grad = jax.jit(jax.grad(loss))(w, jnp.int32(2))
    xt = scorekit.perturb(np.asarray(x), np.asarray(sigma), seed=4, counter=2)
    _, g = scorekit.dsm_loss(xt @ np.asarray(w), np.asarray(sigma), seed=4, counter=2)
    np.testing.assert_allclose(np.asarray(grad), xt.T @ g, rtol=1e-5, atol=1e-6)


def _per_counter_losses(w, x, sigma):
    """One training step's losses at counter c, through every function with a stream
    (sigma's gradient through perturb regenerates its noise from the stream)."""
    def loss(w, sig, c):
        xt = sj.perturb(x, sig, seed=4, counter=c, offset=1)
        s = xt @ w
        total = sj.dsm_loss(s, sigma, seed=4, counter=c)
        total += sj.ssm_loss(s, s * 0.5, seed=5, counter=c, kind="sphere")
        total += sj.langevin_step(xt, s, 0.1, seed=6, counter=c).sum()
        return total + sj.noisy_affine_step(xt, s, 0.9, 0.1, 0.2, seed=7, counter=c).x.sum()
    return loss


def test_grad_with_counters_traced_by_loops_and_checkpoint():
    """Counters traced by lax.fori_loop, lax.scan and jax.checkpoint: the gradient is the
    sum of the steps' gradients at Python int counters (the custom VJPs take the
    stream as inputs, not as values closed over)."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((4, 3)), dtype=jnp.float32)
    sigma = jnp.asarray(rng.uniform(0.3, 1.0, 4), dtype=jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3)), dtype=jnp.float32)
    loss = _per_counter_losses(w, x, sigma)
    want = [sum(jax.grad(loss, argnums=k)(w, sigma, c) for c in range(3)) for k in (0, 1)]

    def looped(w, sig):
        return jax.lax.fori_loop(0, 3, lambda c, acc: acc + loss(w, sig, c), 0.0)

    def scanned(w, sig):
        return jax.lax.scan(lambda acc, c: (acc + loss(w, sig, c), None), 0.0,
                            jnp.arange(3))[0]

    remat = jax.checkpoint(loss)

    def checkpointed(w, sig):
        return sum(remat(w, sig, jnp.int32(c)) for c in range(3))

    for f in (looped, scanned, checkpointed):
        got = jax.jit(jax.grad(f, argnums=(0, 1)))(w, sigma)
        for g, e in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [2**31, 2**40, 2**64 - 1, np.uint64(2**63 + 5), np.int64(2**40)])
def test_grad_with_large_static_seeds(seed):
    """A Python or NumPy integer seed is a constant of the call at any size, in the
    backward pass too: d/dsigma of perturb regenerates the noise of that very seed."""
    x = jnp.ones((2, 3), jnp.float32)
    sigma = jnp.asarray([0.5, 1.5], jnp.float32)
    got = jax.grad(lambda s: sj.perturb(x, s, seed=seed, counter=3).sum())(sigma)
    z = scorekit.normal((2, 3), seed=int(seed), counter=3)
    np.testing.assert_allclose(np.asarray(got), z.sum(1), rtol=1e-6)
    g = jax.grad(lambda x: sj.langevin_step(x, x, 0.1, seed=seed).sum())(x)
    np.testing.assert_allclose(np.asarray(g), 1.1, rtol=1e-6)


def test_errors_name_the_argument():
    x = jnp.ones((4, 3), dtype=jnp.float32)
    with pytest.raises(TypeError, match="score must be float32 or float64"):
        sj.dsm_loss(jnp.ones((4, 3), dtype=jnp.int32), 0.5, seed=1)
    with pytest.raises(TypeError, match="x must be a JAX array"):
        sj.perturb([[1.0]], 0.5, seed=1)
    with pytest.raises(ValueError, match="seed must be in"):
        sj.perturb(x, 0.5, seed=-1)
    with pytest.raises(TypeError, match="counter must be an int or an integer scalar"):
        sj.perturb(x, 0.5, seed=1, counter=jnp.float32(1))
    with pytest.raises(ValueError, match="exactly one of seed= and noise="):
        sj.dsm_loss(x, 0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        sj.dsm_loss(x, 0.5, seed=1, reduction="max")
    with pytest.raises(ValueError, match="kind must be one of"):
        sj.probes((2, 3), kind="cauchy", seed=1)
    with pytest.raises(TypeError, match="float64 needs jax_enable_x64"):
        with jax.enable_x64(False):
            sj.normal((2, 3), seed=1, dtype=np.float64)
    with jax.enable_x64(False):  # float64 data would be computed in float32: refused by name
        x64 = np.ones((2, 3))
        with pytest.raises(TypeError, match="x is float64, which needs jax_enable_x64"):
            sj.perturb(x64, 0.5, seed=1)
        with pytest.raises(TypeError, match="score is float64, which needs jax_enable_x64"):
            sj.dsm_loss(x64, 0.5, seed=1)
        assert sj.perturb(x64.astype(np.float32), np.array([0.5, 1.0]), seed=1).dtype == np.float32
    with pytest.raises(TypeError, match="x must be a JAX or NumPy array, got Tensor"):
        sj.perturb(pytest.importorskip("torch").ones(2, 3), 0.5, seed=1)
    with pytest.raises(ValueError, match="does not differentiate with respect to sigma"):
        jax.grad(lambda s: sj.dsm_loss(x, s, seed=1))(jnp.float32(0.5))
    with pytest.raises(ValueError, match="does not differentiate with respect to step_size"):
        jax.grad(lambda h: sj.langevin_step(x, x, h, seed=1).sum())(jnp.float32(0.1))
    # checks that need the values run in the kernel, at call time
    with pytest.raises(Exception, match="sigma must be > 0"):
        sj.perturb(x, jnp.zeros(4, dtype=jnp.float32), seed=1).block_until_ready()
    with pytest.raises(Exception, match="counter must be in"):
        jax.jit(lambda c: sj.perturb(x, 0.5, seed=1, counter=c))(jnp.int32(-1)).block_until_ready()
