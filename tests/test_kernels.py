"""perturb, dsm_loss and langevin_step against scorekit.reference and closed forms."""

import concurrent.futures

import numpy as np
import pytest
from conftest import tolerance
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scorekit
from scorekit import reference as ref

U64 = st.integers(0, 2**64 - 1)
BATCH_SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7) | st.tuples(
    st.integers(0, 3), st.integers(4000, 9000)
)
FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


def batch(draw, shape, dtype, lo=-3.0, hi=3.0):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def per_sample(draw, B, dtype, lo, hi):
    """A Python scalar or a length-B array in [lo, hi]."""
    if draw(st.booleans()):
        return draw(st.floats(lo, hi))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.uniform(lo, hi, size=B).astype(dtype)


def assert_close(got, want, dtype, scale=1.0):
    want = np.asarray(want, dtype=np.float64)
    tol = tolerance(dtype)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=tol,
                               atol=tol * max(scale, float(np.max(np.abs(want), initial=0.0))))


@given(data=st.data(), shape=BATCH_SHAPES, dtype=FLOAT_DTYPES, seed=U64, counter=U64)
def test_perturb_matches_reference(data, shape, dtype, seed, counter):
    x = batch(data.draw, shape, dtype)
    sigma = per_sample(data.draw, shape[0], dtype, 0.01, 50.0)
    scale = data.draw(st.none() | st.just("array") | st.floats(-2, 2))
    if scale == "array":
        scale = per_sample(data.draw, shape[0], dtype, 0.0, 1.0)
    got = scorekit.perturb(x, sigma, seed=seed, counter=counter, scale=scale)
    want = ref.perturb(x, sigma, seed=seed, counter=counter, scale=scale)
    assert got.dtype == dtype and got.shape == x.shape
    assert_close(got, want, dtype, scale=50.0)


@given(data=st.data(), shape=BATCH_SHAPES, dtype=FLOAT_DTYPES, seed=U64, counter=U64)
def test_langevin_step_matches_reference(data, shape, dtype, seed, counter):
    x = batch(data.draw, shape, dtype)
    score = batch(data.draw, shape, dtype)
    h = per_sample(data.draw, shape[0], dtype, 0.0, 0.5)
    got = scorekit.langevin_step(x, score, h, seed=seed, counter=counter)
    want = ref.langevin_step(x, score, h, seed=seed, counter=counter)
    assert got.dtype == dtype and got.shape == x.shape
    assert_close(got, want, dtype, scale=4.0)


@given(data=st.data(), shape=BATCH_SHAPES, dtype=FLOAT_DTYPES,
       reduction=st.sampled_from(["mean", "sum", "none"]),
       weight=st.sampled_from(["sigma2", "none", "scalar", "array"]),
       stored=st.booleans(), seed=U64, counter=U64)
def test_dsm_loss_matches_reference(data, shape, dtype, reduction, weight, stored, seed, counter):
    score = batch(data.draw, shape, dtype)
    B = shape[0]
    sigma = per_sample(data.draw, B, dtype, 0.05, 20.0)
    if weight == "scalar":
        weight = data.draw(st.floats(0, 10))
    elif weight == "array":
        weight = batch(data.draw, (B,), dtype, 0.0, 10.0)
    if stored:
        noise = batch(data.draw, shape, dtype)
        kw = dict(noise=noise)
    else:
        kw = dict(seed=seed, counter=counter)
    loss, grad = scorekit.dsm_loss(score, sigma, weight=weight, reduction=reduction, **kw)
    want_loss, want_grad = ref.dsm_loss(score, sigma, weight=weight, reduction=reduction, **kw)
    assert grad.dtype == dtype and grad.shape == shape
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == (B,)
    else:
        assert isinstance(loss, float)
    if reduction == "mean" and B == 0:
        assert np.isnan(loss) and np.isnan(want_loss)
    else:
        assert_close(loss, want_loss, dtype)
    assert_close(grad, want_grad, dtype)
    only = scorekit.dsm_loss(score, sigma, weight=weight, reduction=reduction, return_grad=False, **kw)
    np.testing.assert_array_equal(only, loss)


def test_dsm_long_rows_use_chunked_sums(dtype, threads):
    """Rows longer than one reduction chunk, several threads, against the reference."""
    rng = np.random.default_rng(0)
    score = rng.standard_normal((3, 3 * 4096 + 17)).astype(dtype)
    sigma = np.array([0.5, 1.0, 2.0], dtype=dtype)
    want_loss, want_grad = ref.dsm_loss(score, sigma, seed=9, reduction="none")
    results = []
    for t in (1, 2):
        scorekit.set_num_threads(t)
        loss, grad = scorekit.dsm_loss(score, sigma, seed=9, reduction="none")
        assert_close(loss, want_loss, dtype)
        assert_close(grad, want_grad, dtype)
        results.append((loss, grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dsm_gradient_matches_finite_differences(reduction):
    rng = np.random.default_rng(1)
    score = rng.standard_normal((4, 3, 2))
    sigma = np.array([0.3, 1.0, 2.0, 5.0])
    weight = np.array([1.0, 0.5, 2.0, 0.1])

    def total(s):
        loss = scorekit.dsm_loss(s, sigma, seed=3, weight=weight, reduction=reduction,
                                 return_grad=False)
        return float(np.sum(loss))

    _, grad = scorekit.dsm_loss(score, sigma, seed=3, weight=weight, reduction=reduction)
    eps = 1e-6
    fd = np.empty_like(score)
    for i in np.ndindex(score.shape):
        e = np.zeros_like(score)
        e[i] = eps
        fd[i] = (total(score + e) - total(score - e)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_perturb_and_dsm_share_the_noise(dtype):
    """score = -(x_tilde - x) / sigma^2, the exact denoising score, gives (almost) zero loss."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 50)).astype(dtype)
    sigma = rng.uniform(0.1, 3.0, size=64).astype(dtype)
    xt = scorekit.perturb(x, sigma, seed=77, counter=5)
    z = (xt.astype(np.float64) - x) / sigma[:, None]
    score = (-z / sigma[:, None]).astype(dtype)
    loss = scorekit.dsm_loss(score, sigma, seed=77, counter=5, reduction="none", return_grad=False)
    baseline = scorekit.dsm_loss(score, sigma, seed=78, counter=5, reduction="none", return_grad=False)
    # float32: the recovered z carries rounding of x_tilde; the loss with the wrong noise is O(D)
    assert np.all(loss <= (1e-6 if dtype == np.float32 else 1e-20) * baseline)
    assert np.all(baseline > 1.0)


def test_dsm_gaussian_closed_form(dtype):
    """Gaussian data N(mu, s0^2 I) and its exact noisy score: E[L_b] = 0.5 D s0^2 / (s0^2 + sigma^2)."""
    B, D, mu, s0 = 20000, 8, 1.5, 0.7
    sigma = np.repeat(np.array([0.1, 0.5, 1.0, 4.0], dtype=dtype), B // 4)
    x = (mu + s0 * scorekit.normal((B, D), seed=1, counter=0, dtype=dtype)).astype(dtype)
    xt = scorekit.perturb(x, sigma, seed=2, counter=0)
    score = (-(xt - mu) / (s0**2 + sigma[:, None] ** 2)).astype(dtype)
    losses = scorekit.dsm_loss(score, sigma, seed=2, reduction="none", return_grad=False)
    for s in np.unique(sigma):
        rows = losses[sigma == s].astype(np.float64)
        expected = 0.5 * D * s0**2 / (s0**2 + float(s) ** 2)
        stderr = rows.std(ddof=1) / np.sqrt(len(rows))
        assert abs(rows.mean() - expected) < 5 * stderr, (s, rows.mean(), expected, stderr)


def test_langevin_stationary_variance_of_a_gaussian():
    """ULA on N(0, s^2) with step h has stationary variance s^2 / (1 - h / (2 s^2))."""
    s2, h, n, steps = 2.0, 0.2, 200_000, 60
    x = np.zeros((n, 1))
    for k in range(steps):
        x = scorekit.langevin_step(x, -x / s2, h, seed=10, counter=k)
    expected = s2 / (1 - h / (2 * s2))
    # var of the sample variance of n Gaussians: 2 sigma^4 / (n - 1)
    assert abs(x.var() - expected) < 5 * np.sqrt(2 * expected**2 / (n - 1))
    assert abs(x.mean()) < 5 * np.sqrt(expected / n)


@pytest.mark.parametrize("kernel", ["perturb", "langevin_step", "dsm_loss"])
def test_bit_identical_across_threads_and_calls(kernel, dtype, threads):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((257, 1031)).astype(dtype)
    s = rng.standard_normal(x.shape).astype(dtype)
    sig = rng.uniform(0.1, 2, 257).astype(dtype)
    calls = {
        "perturb": lambda: scorekit.perturb(x, sig, seed=5, counter=1, scale=sig),
        "langevin_step": lambda: scorekit.langevin_step(x, s, sig, seed=5, counter=1),
        "dsm_loss": lambda: scorekit.dsm_loss(s, sig, seed=5, counter=1, reduction="none"),
    }
    out = []
    for t in (1, 2, 1, 4):
        scorekit.set_num_threads(t)
        out.append(calls[kernel]())
    first = out[0] if isinstance(out[0], tuple) else (out[0],)
    for other in out[1:]:
        for a, b in zip(first, other if isinstance(other, tuple) else (other,)):
            np.testing.assert_array_equal(a, b)


def test_non_contiguous_inputs_give_the_same_answers(dtype):
    rng = np.random.default_rng(4)
    big = rng.standard_normal((6, 10, 8)).astype(dtype)
    x = big[:, ::2, 1::2]  # strided view
    xc = np.ascontiguousarray(x)
    xf = np.asfortranarray(xc)
    sig = np.linspace(0.5, 2, 6).astype(dtype)
    sig_strided = np.repeat(sig, 2)[::2]
    for a in (x, xf):
        np.testing.assert_array_equal(scorekit.perturb(a, sig_strided, seed=1),
                                      scorekit.perturb(xc, sig, seed=1))
        np.testing.assert_array_equal(scorekit.langevin_step(a, a, 0.1, seed=1),
                                      scorekit.langevin_step(xc, xc, 0.1, seed=1))
        got = scorekit.dsm_loss(a, sig_strided, seed=1)
        want = scorekit.dsm_loss(xc, sig, seed=1)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


def test_in_place_and_out(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 7)).astype(dtype)
    score = rng.standard_normal((5, 7)).astype(dtype)
    want = scorekit.langevin_step(x, score, 0.01, seed=2)
    y = x.copy()
    assert scorekit.langevin_step(y, score, 0.01, seed=2, out=y) is y
    np.testing.assert_array_equal(y, want)
    y = x.copy()
    assert scorekit.perturb(y, 0.5, seed=2, out=y) is y
    np.testing.assert_array_equal(y, scorekit.perturb(x, 0.5, seed=2))
    # an out that overlaps an input shifted by one row is handled by copying the input
    buf = np.concatenate([x, x[:1]]).astype(dtype)
    view_in, view_out = buf[:5], buf[1:6]
    expected = scorekit.langevin_step(view_in.copy(), score, 0.01, seed=2)
    scorekit.langevin_step(view_in, score, 0.01, seed=2, out=view_out)
    np.testing.assert_array_equal(buf[1:6], expected)


def test_empty_batches(dtype):
    for shape in [(0,), (0, 3), (4, 0)]:
        x = np.zeros(shape, dtype=dtype)
        assert scorekit.perturb(x, 1.0, seed=0).shape == shape
        assert scorekit.langevin_step(x, x, 0.1, seed=0).shape == shape
        loss, grad = scorekit.dsm_loss(x, 1.0, seed=0, reduction="none")
        assert loss.shape == (shape[0],) and grad.shape == shape
        assert np.all(loss == 0)
        assert scorekit.dsm_loss(x, 1.0, seed=0, reduction="sum")[0] == 0.0
    assert np.isnan(scorekit.dsm_loss(np.zeros((0, 3), dtype), 1.0, seed=0)[0])
    assert scorekit.dsm_loss(np.zeros((4, 0), dtype), 1.0, seed=0)[0] == 0.0


def test_nan_and_inf_propagate(dtype):
    x = np.array([[1.0, np.nan, np.inf, -np.inf]], dtype=dtype)
    y = scorekit.perturb(x, 1.0, seed=0)
    assert np.isfinite(y[0, 0]) and np.isnan(y[0, 1]) and y[0, 2] == np.inf and y[0, 3] == -np.inf
    y = scorekit.langevin_step(x, np.zeros_like(x), 0.1, seed=0)
    assert np.isnan(y[0, 1]) and y[0, 2] == np.inf
    loss, grad = scorekit.dsm_loss(x, 1.0, seed=0, reduction="none")
    assert np.isnan(loss[0]) and np.isnan(grad[0, 1]) and np.isfinite(grad[0, 0])


def test_concurrent_calls_from_python_threads(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 4096)).astype(dtype)
    sig = np.full(64, 0.5, dtype=dtype)

    def work(k):
        return (scorekit.perturb(x, sig, seed=k), scorekit.langevin_step(x, x, 0.1, seed=k),
                scorekit.dsm_loss(x, sig, seed=k)[1])

    serial = [work(k) for k in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(work, range(8)))
    for a, b in zip(serial, parallel):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_byte_swapped_inputs_and_sequences_of_parameters(dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5)).astype(dtype)
    swapped = x.astype(x.dtype.newbyteorder(">" if x.dtype.isnative and np.little_endian else "<"))
    assert not swapped.dtype.isnative
    sig = np.array([0.5, 1.0, 2.0], dtype=dtype)
    want = scorekit.perturb(x, sig, seed=3)
    np.testing.assert_array_equal(scorekit.perturb(swapped, [0.5, 1, 2], seed=3), want)
    np.testing.assert_array_equal(scorekit.langevin_step(swapped, swapped, (0.1, 0.2, 0.3), seed=3),
                                  scorekit.langevin_step(x, x, np.array([0.1, 0.2, 0.3], dtype), seed=3))
    got = scorekit.dsm_loss(swapped, [0.5, 1, 2], seed=3, reduction="none")
    np.testing.assert_array_equal(got[0], scorekit.dsm_loss(x, sig, seed=3, reduction="none")[0])


@pytest.mark.parametrize("kernel", ["perturb", "langevin_step"])
def test_per_sample_parameters_inside_out(kernel, dtype):
    """A parameter array that is a view into out is read before out is written."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 4)).astype(dtype)
    score = rng.standard_normal((4, 4)).astype(dtype)
    out = np.zeros((4, 4), dtype)
    param = out[0]  # the first row of out doubles as the per-sample parameter
    param[...] = np.array([0.1, 0.2, 0.3, 0.4], dtype)
    if kernel == "perturb":
        want = scorekit.perturb(x, param.copy(), seed=4)
        scorekit.perturb(x, param, seed=4, out=out)
    else:
        want = scorekit.langevin_step(x, score, param.copy(), seed=4)
        scorekit.langevin_step(x, score, param, seed=4, out=out)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("weight", ["sigma2", "none"])
@pytest.mark.parametrize("dtype,sigma", [(np.float32, 1e20), (np.float32, 1e-25),
                                         (np.float32, 1e-36), (np.float64, 1e160),
                                         (np.float64, 1e-160)])
def test_dsm_loss_with_extreme_sigma(dtype, sigma, weight):
    """A near-optimal score at a huge or tiny sigma: finite, and as the reference."""
    shape = (3, 50)
    z = scorekit.normal(shape, seed=6, dtype=dtype).astype(np.float64)
    u = np.random.default_rng(2).uniform(0.5, 1.5, shape)
    score = ((u - z) / sigma).astype(dtype)  # sigma * score + z = u, up to rounding
    with np.errstate(over="ignore"):  # weight "none" at a tiny sigma: the loss overflows
        loss, grad = scorekit.dsm_loss(score, sigma, seed=6, weight=weight, reduction="none")
        want_loss, want_grad = ref.dsm_loss(score, sigma, seed=6, weight=weight, reduction="none")
    assert np.isfinite(np.asarray(want_grad, dtype=dtype)).all()
    assert np.isfinite(grad).all()
    assert_close(grad, want_grad, dtype)
    with np.errstate(over="ignore"):
        want_loss = np.asarray(want_loss).astype(dtype)
    if np.isfinite(want_loss).all():
        assert_close(loss, want_loss, dtype)
    else:
        np.testing.assert_array_equal(loss, want_loss)  # inf where the loss overflows


def test_read_only_inputs_are_accepted(dtype):
    score = np.random.default_rng(9).standard_normal((3, 5)).astype(dtype)
    noise = scorekit.normal((3, 5), seed=4, dtype=dtype)
    want = scorekit.dsm_loss(score, 0.5, noise=noise)
    for a in (score, noise):
        a.flags.writeable = False
    got = scorekit.dsm_loss(score, 0.5, noise=noise)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
