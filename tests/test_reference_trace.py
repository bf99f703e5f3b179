"""Tests of the trace estimators and sliced / implicit score matching in ``scorekit.reference``."""

import itertools
import math

import numpy as np
import pytest

from scorekit import reference as ref

KINDS = ["rademacher", "gaussian", "sphere"]
DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]


def rng(seed):
    return np.random.default_rng(seed)


def trace(a):
    return np.trace(a, axis1=-2, axis2=-1)


def stream_rows(kind, seed, counter, dtype, rows, dim):
    """``rows`` x ``dim`` probes built by hand from one flat draw of the stream."""
    n = rows * dim
    if kind == "rademacher":
        flat = ref.rademacher(n, seed=seed, counter=counter, dtype=dtype).astype(np.float64)
    else:
        flat = ref.normal(n, seed=seed, counter=counter, dtype=dtype, precise=True)
        flat = flat.astype(np.float64)
    out = flat.reshape(rows, dim)
    if kind == "sphere":
        out = np.array([g * math.sqrt(dim / float(np.dot(g, g))) for g in out])
    return out


def within(estimate, target, stderr, k=4.5):
    """``|estimate - target| <= k`` standard errors."""
    return abs(estimate - target) <= k * stderr


def psd_decaying(dim, seed, base=0.7):
    q, _ = np.linalg.qr(rng(seed).standard_normal((dim, dim)))
    return (q * base ** np.arange(dim)) @ q.T


# --------------------------------------------------------------------------- probes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_probes_layout(kind, dtype):
    b, k, tail = 3, 4, (2, 5)
    v = ref.probes((b,) + tail, kind=kind, seed=11, counter=7, dtype=dtype, num_probes=k)
    assert v.shape == (b, k) + tail
    assert v.dtype == np.float64
    rows = stream_rows(kind, 11, 7, dtype, b * k, 10)
    if kind == "sphere":
        np.testing.assert_allclose(v.reshape(b * k, 10), rows, rtol=1e-15, atol=0)
    else:
        np.testing.assert_array_equal(v.reshape(b * k, 10), rows)
    # row b * K + k is probe k of sample b
    np.testing.assert_array_equal(v[2, 1].ravel(), v.reshape(b * k, 10)[2 * k + 1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_probes_single_equals_k1(kind, dtype):
    shape = (4, 3, 2)
    one = ref.probes(shape, kind=kind, seed=5, dtype=dtype)
    k1 = ref.probes(shape, kind=kind, seed=5, dtype=dtype, num_probes=1)
    assert one.shape == shape
    assert k1.shape == (4, 1, 3, 2)
    np.testing.assert_array_equal(one, k1[:, 0])


def test_probes_seed_counter_dtype_select_the_stream():
    base = ref.probes((2, 8), kind="gaussian", seed=1, counter=0)
    for kwargs in ({"seed": 2}, {"counter": 1}, {"dtype": np.float64}):
        args = {"seed": 1, "counter": 0, **kwargs}
        assert not np.array_equal(base, ref.probes((2, 8), kind="gaussian", **args))


@pytest.mark.parametrize("dtype", DTYPES)
def test_probes_values(dtype):
    r = ref.probes((50, 7), kind="rademacher", seed=3, dtype=dtype, num_probes=3)
    assert set(np.unique(r)) == {-1.0, 1.0}
    s = ref.probes((50, 7), kind="sphere", seed=3, dtype=dtype, num_probes=3)
    np.testing.assert_allclose(np.linalg.norm(s, axis=2), math.sqrt(7), rtol=1e-14)
    # the sphere rows point along the Gaussian rows
    g = ref.probes((50, 7), kind="gaussian", seed=3, dtype=dtype, num_probes=3)
    ratio = s / g
    np.testing.assert_allclose(ratio, ratio[..., :1] * np.ones_like(ratio), rtol=1e-13)
    assert np.all(ratio > 0)


@pytest.mark.parametrize("kind", KINDS)
def test_probes_second_moment_is_identity(kind):
    dim, n = 4, 20000
    v = ref.probes((n, dim), kind=kind, seed=99, dtype=np.float64)
    second = v.T @ v / n
    np.testing.assert_allclose(second, np.eye(dim), atol=0.06)


def test_probes_empty():
    assert ref.probes((0, 3), kind="sphere", seed=0, num_probes=2).shape == (0, 2, 3)
    assert ref.probes((3, 0), kind="sphere", seed=0).shape == (3, 0)
    assert ref.probes((4,), kind="gaussian", seed=0, num_probes=2).shape == (4, 2)


# --------------------------------------------------------------------------- hutchinson / diagonal


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hutchinson_is_the_mean_of_quadratic_forms(kind, dtype):
    a = rng(0).standard_normal((3, 6, 6))
    est, err = ref.hutchinson(a, num_probes=5, kind=kind, seed=4, counter=2, dtype=dtype)
    v = ref.probes((3, 6), kind=kind, seed=4, counter=2, dtype=dtype, num_probes=5)
    t = np.array([[v[b, k] @ a[b] @ v[b, k] for k in range(5)] for b in range(3)])
    np.testing.assert_allclose(est, t.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(err, t.std(axis=1, ddof=1) / math.sqrt(5), rtol=1e-12)
    assert est.shape == err.shape == (3,) and est.dtype == err.dtype == np.float64


def test_hutchinson_single_probe_has_nan_stderr():
    est, err = ref.hutchinson(np.eye(3)[None], num_probes=1, kind="gaussian", seed=0)
    assert est.shape == (1,) and np.isnan(err).all()


@pytest.mark.parametrize("num_probes", [1, 3])
def test_hutchinson_rademacher_exact_on_diagonal(num_probes):
    a = np.stack([np.diag(d) for d in rng(1).standard_normal((4, 9))])
    est, err = ref.hutchinson(a, num_probes=num_probes, kind="rademacher", seed=8)
    np.testing.assert_allclose(est, trace(a), rtol=1e-14, atol=1e-14)
    if num_probes > 1:
        np.testing.assert_allclose(err, 0, atol=1e-14)


def test_hutchinson_sphere_exact_on_multiple_of_identity():
    a = np.array([2.5, -1.0, 0.0])[:, None, None] * np.eye(8)
    est, err = ref.hutchinson(a, num_probes=4, kind="sphere", seed=3, dtype=np.float64)
    np.testing.assert_allclose(est, [20.0, -8.0, 0.0], rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(err, 0, atol=1e-13)


def test_rademacher_average_over_all_sign_vectors_is_the_trace():
    n = 5
    a = rng(2).standard_normal((n, n))
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    values = np.einsum("ki,ij,kj->k", signs, a, signs)
    assert values.mean() == pytest.approx(np.trace(a), abs=1e-12)
    # every single-probe estimate is one of these 2**n values
    est, _ = ref.hutchinson(np.broadcast_to(a, (64, n, n)), num_probes=1, kind="rademacher", seed=6)
    assert np.all(np.min(np.abs(est[:, None] - values[None]), axis=1) < 1e-12)


def single_probe_variance(a, kind):
    n = a.shape[0]
    s = (a + a.T) / 2
    fro2 = np.sum(s * s)
    if kind == "rademacher":
        return 2 * (fro2 - np.sum(np.diag(a) ** 2))
    if kind == "gaussian":
        return 2 * fro2
    return 2 * n / (n + 2) * (fro2 - np.trace(a) ** 2 / n)


@pytest.mark.parametrize("kind", KINDS)
def test_hutchinson_single_probe_variance(kind):
    n, k = 5, 4000
    a = rng(3).standard_normal((n, n)) + np.diag(np.arange(n, dtype=float))
    est, err = ref.hutchinson(a[None], num_probes=k, kind=kind, seed=21, dtype=np.float64)
    v = ref.probes((1, n), kind=kind, seed=21, dtype=np.float64, num_probes=k)[0]
    t = np.einsum("ki,ij,kj->k", v, a, v)
    var = t.var(ddof=1)
    assert err[0] * math.sqrt(k) == pytest.approx(math.sqrt(var), rel=1e-12)
    assert within(est[0], np.trace(a), err[0])
    m4 = np.mean((t - t.mean()) ** 4)
    se_var = math.sqrt((m4 - var**2) / k)
    assert within(var, single_probe_variance(a, kind), se_var)


@pytest.mark.parametrize("kind", KINDS)
def test_diagonal_matches_direct_formula_and_sums_to_hutchinson(kind):
    a = rng(4).standard_normal((2, 5, 5))
    est, err = ref.diagonal(a, num_probes=6, kind=kind, seed=2, counter=1)
    v = ref.probes((2, 5), kind=kind, seed=2, counter=1, num_probes=6)
    terms = np.array([[v[b, k] * (a[b] @ v[b, k]) for k in range(6)] for b in range(2)])
    np.testing.assert_allclose(est, terms.mean(axis=1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(err, terms.std(axis=1, ddof=1) / math.sqrt(6), rtol=1e-12)
    tr, _ = ref.hutchinson(a, num_probes=6, kind=kind, seed=2, counter=1)
    np.testing.assert_allclose(est.sum(axis=1), tr, rtol=1e-12)


def test_diagonal_rademacher_exact_on_diagonal():
    d = rng(5).standard_normal((3, 7))
    a = np.stack([np.diag(x) for x in d])
    est, err = ref.diagonal(a, num_probes=2, kind="rademacher", seed=0)
    np.testing.assert_array_equal(est, d)
    np.testing.assert_array_equal(err, 0)
    _, err1 = ref.diagonal(a, num_probes=1, kind="rademacher", seed=0)
    assert err1.shape == (3, 7) and np.isnan(err1).all()


# --------------------------------------------------------------------------- Hutch++ and XTrace


def low_rank(batch, dim, rank, seed):
    g = rng(seed)
    return g.standard_normal((batch, dim, rank)) @ g.standard_normal((batch, rank, dim))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_matvecs,rank", [(6, 2), (7, 2), (8, 1), (9, 3)])
def test_hutchpp_exact_for_rank_at_most_s(kind, num_matvecs, rank):
    a = low_rank(3, 12, rank, seed=num_matvecs)
    est, err = ref.hutchpp(a, num_matvecs=num_matvecs, kind=kind, seed=1)
    np.testing.assert_allclose(est, trace(a), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(err, 0, atol=1e-10)


def test_hutchpp_matches_direct_formula():
    a = rng(6).standard_normal((2, 8, 8))
    m, s, g = 10, 3, 4
    est, err = ref.hutchpp(a, num_matvecs=m, kind="rademacher", seed=5, counter=3)
    v = ref.probes((2, 8), kind="rademacher", seed=5, counter=3, num_probes=s + g)
    for b in range(2):
        q, _ = np.linalg.qr(a[b] @ v[b, :s].T)
        p = np.eye(8) - q @ q.T
        terms = [(p @ x) @ a[b] @ (p @ x) for x in v[b, s:]]
        assert est[b] == pytest.approx(np.trace(q.T @ a[b] @ q) + np.mean(terms), rel=1e-12)
        assert err[b] == pytest.approx(np.std(terms, ddof=1) / math.sqrt(g), rel=1e-10)
    _, err3 = ref.hutchpp(a, num_matvecs=3, kind="gaussian", seed=0)
    assert np.isnan(err3).all()


@pytest.mark.parametrize("kind", KINDS)
def test_hutchpp_unbiased_on_psd_decaying_spectrum(kind):
    a = psd_decaying(20, seed=7)
    est, _ = ref.hutchpp(np.broadcast_to(a, (400, 20, 20)), num_matvecs=9, kind=kind, seed=12)
    assert within(est.mean(), np.trace(a), est.std(ddof=1) / math.sqrt(est.size))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_matvecs,rank", [(8, 3), (9, 3), (6, 1), (12, 2)])
def test_xtrace_exact_for_rank_at_most_s_minus_1(kind, num_matvecs, rank):
    a = low_rank(3, 10, rank, seed=num_matvecs + 100)
    est, err = ref.xtrace(a, num_matvecs=num_matvecs, kind=kind, seed=2)
    np.testing.assert_allclose(est, trace(a), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(err, 0, atol=1e-9)


def xtrace_by_downdating(a, omega):
    """XTrace with the improved normalisation from one QR of the full sketch.

    ``Q_i`` spans ``range(Q)`` minus the direction ``Q s_i`` orthogonal to
    every ``A omega_j``, ``j != i``, with ``s_i`` the normalised column ``i``
    of ``R^{-T}``; the normalisation uses ``||omega_i||^2 = n``, as for
    sphere test vectors.
    """
    n, m = omega.shape
    q, r = np.linalg.qr(a @ omega)
    s = np.linalg.inv(r).T
    s /= np.linalg.norm(s, axis=0)
    w = q.T @ omega
    h = q.T @ a @ q
    ests = []
    for i in range(m):
        sw = s[:, i] @ w[:, i]
        resid = omega[:, i] - q @ w[:, i] + q @ s[:, i] * sw
        scale = (n - m + 1) / (n - w[:, i] @ w[:, i] + sw**2)
        ests.append(np.trace(h) - s[:, i] @ h @ s[:, i] + scale * (resid @ a @ resid))
    return np.mean(ests), np.std(ests, ddof=1) / math.sqrt(m)


@pytest.mark.parametrize("dtype", DTYPES)
def test_xtrace_matches_downdating_formulas_for_sphere_vectors(dtype):
    a = rng(8).standard_normal((3, 9, 9))
    est, err = ref.xtrace(a, num_matvecs=10, seed=4, counter=1, dtype=dtype)
    omega = ref.probes((3, 9), kind="sphere", seed=4, counter=1, dtype=dtype, num_probes=5)
    for b in range(3):
        t, e = xtrace_by_downdating(a[b], omega[b].T)
        assert est[b] == pytest.approx(t, rel=1e-9)
        assert err[b] == pytest.approx(e, rel=1e-7)


def test_xtrace_gaussian_equals_sphere_and_odd_budget_rounds_down():
    a = rng(9).standard_normal((2, 7, 7))
    sphere = ref.xtrace(a, num_matvecs=8, kind="sphere", seed=3)
    gauss = ref.xtrace(a, num_matvecs=8, kind="gaussian", seed=3)
    np.testing.assert_allclose(gauss, sphere, rtol=1e-10)
    np.testing.assert_array_equal(ref.xtrace(a, num_matvecs=9, seed=3)[0], sphere[0])


def test_xtrace_square_sketch_is_allowed():
    a = rng(10).standard_normal((2, 4, 4))
    est, err = ref.xtrace(a, num_matvecs=8, kind="rademacher", seed=0)
    assert np.all(np.isfinite(est)) and np.all(np.isfinite(err))


@pytest.mark.parametrize("kind", ["sphere", "gaussian"])
def test_xtrace_unbiased_on_psd_decaying_spectrum(kind):
    a = psd_decaying(20, seed=11, base=0.8)
    est, _ = ref.xtrace(np.broadcast_to(a, (300, 20, 20)), num_matvecs=10, kind=kind, seed=13)
    assert within(est.mean(), np.trace(a), est.std(ddof=1) / math.sqrt(est.size))


def test_estimators_empty_batch():
    a = np.zeros((0, 5, 5))
    for fn, kw in [
        (ref.hutchinson, {"num_probes": 3}),
        (ref.hutchpp, {"num_matvecs": 6}),
        (ref.xtrace, {"num_matvecs": 6}),
    ]:
        est, err = fn(a, kind="sphere", seed=0, **kw)
        assert est.shape == err.shape == (0,)
    est, err = ref.diagonal(a, num_probes=2, kind="gaussian", seed=0)
    assert est.shape == err.shape == (0, 5)


# --------------------------------------------------------------------------- divergence


def linear(m):
    def fn(y):
        b = y.shape[0]
        return (y.reshape(b, -1) @ m.T).reshape(y.shape)

    return fn


def nonlinear(m):
    def fn(y):
        return np.tanh(y @ m.T) + y**3

    def div(x):
        return np.sum((1 - np.tanh(x @ m.T) ** 2) * np.diag(m) + 3 * x**2, axis=1)

    def jac(x):
        return (1 - np.tanh(m @ x) ** 2)[:, None] * m + np.diag(3 * x**2)

    return fn, div, jac


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tail", [(6,), (2, 3)])
def test_divergence_exact_of_linear_map(dtype, tail):
    m = rng(12).standard_normal((6, 6))
    x = rng(13).standard_normal((4,) + tail).astype(dtype)
    div = ref.divergence(linear(m), x, seed=0, method="exact")
    assert div.shape == (4,) and div.dtype == np.float64
    np.testing.assert_allclose(div, np.trace(m), rtol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_central_of_linear_map_is_hutchinson(kind, dtype):
    m = rng(14).standard_normal((5, 5))
    x = (10 * rng(15).standard_normal((3, 5))).astype(dtype)
    div = ref.divergence(linear(m), x, num_probes=4, kind=kind, seed=9, counter=2)
    est, _ = ref.hutchinson(
        np.broadcast_to(m, (3, 5, 5)), num_probes=4, kind=kind, seed=9, counter=2, dtype=dtype
    )
    np.testing.assert_allclose(div, est, rtol=1e-8, atol=1e-9)


def test_divergence_central_mean_is_the_trace():
    m = rng(16).standard_normal((5, 5))
    x = np.broadcast_to(rng(17).standard_normal(5), (3000, 5)).copy()
    div = ref.divergence(linear(m), x, seed=4)
    assert within(div.mean(), np.trace(m), div.std(ddof=1) / math.sqrt(div.size))


def test_divergence_of_nonlinear_map():
    m = rng(18).standard_normal((5, 5))
    fn, div, jac = nonlinear(m)
    x = rng(19).standard_normal((3, 5))
    np.testing.assert_allclose(ref.divergence(fn, x, seed=0, method="exact"), div(x), rtol=1e-7)
    x32 = x.astype(np.float32)
    exact32 = ref.divergence(fn, x32, seed=0, method="exact")
    np.testing.assert_allclose(exact32, div(x32.astype(np.float64)), rtol=1e-3)
    central = ref.divergence(fn, x, num_probes=3, kind="sphere", seed=5)
    v = ref.probes(x.shape, kind="sphere", seed=5, dtype=np.float64, num_probes=3)
    expected = [np.mean([vk @ jac(x[b]) @ vk for vk in v[b]]) for b in range(3)]
    np.testing.assert_allclose(central, expected, rtol=1e-7)


class Recorder:
    """Records the inputs of ``fn(y) = y``."""

    def __init__(self):
        self.calls = []

    def __call__(self, y):
        self.calls.append(y.copy())
        return y


@pytest.mark.parametrize("dtype", DTYPES)
def test_divergence_default_step(dtype):
    x = np.array([[0.1, -0.2, 0.3], [30.0, -40.0, 50.0]], dtype=dtype)
    rec = Recorder()
    div = ref.divergence(rec, x, seed=0, method="exact")
    np.testing.assert_allclose(div, 3.0, rtol=1e-9)
    assert len(rec.calls) == 6
    for call in rec.calls:
        assert call.dtype == np.float64
    h = rec.calls[0][:, 0] - x[:, 0].astype(np.float64)
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    expected = np.finfo(dtype).eps ** (1 / 3) * np.maximum(1.0, rms)
    np.testing.assert_allclose(h, expected, rtol=1e-9)
    np.testing.assert_array_equal(rec.calls[0][:, 1:], x[:, 1:])


@pytest.mark.parametrize("step", [0.25, np.array([0.25, 0.5])])
def test_divergence_explicit_step(step):
    x = rng(20).standard_normal((2, 4))
    rec = Recorder()
    ref.divergence(rec, x, num_probes=2, kind="rademacher", seed=3, step=step)
    assert len(rec.calls) == 4
    v = ref.probes(x.shape, kind="rademacher", seed=3, dtype=np.float64, num_probes=2)
    h = np.broadcast_to(step, (2,))[:, None]
    np.testing.assert_allclose(rec.calls[0], x + h * v[:, 0], rtol=1e-15)
    np.testing.assert_allclose(rec.calls[1], x - h * v[:, 0], rtol=1e-15)
    np.testing.assert_allclose(rec.calls[2], x + h * v[:, 1], rtol=1e-15)


def test_divergence_empty():
    assert ref.divergence(Recorder(), np.zeros((0, 3)), seed=0).shape == (0,)
    np.testing.assert_array_equal(ref.divergence(Recorder(), np.zeros((2, 0)), seed=0), [0, 0])


# --------------------------------------------------------------------------- SSM / ISM


def ssm_direct(score, jvp, v, vr):
    """Per-sample SSM losses by explicit loops; ``v`` and ``jvp`` are (B, K, ...)."""
    b, k = v.shape[:2]
    out = np.zeros(b)
    for i in range(b):
        for j in range(k):
            a = np.sum(v[i, j] * jvp[i, j])
            c = np.sum(v[i, j] * score[i])
            out[i] += a + 0.5 * (np.sum(score[i] ** 2) if vr else c**2)
    return out / k


def reduce(per_sample, reduction):
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vr", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("num_probes", [None, 3])
def test_ssm_loss_direct_formula(kind, vr, reduction, num_probes):
    g = rng(21)
    score = g.standard_normal((3, 2, 2))
    k = 1 if num_probes is None else num_probes
    jvp_shape = score.shape if num_probes is None else (3, k, 2, 2)
    jvp = g.standard_normal(jvp_shape)
    kw = dict(seed=7, counter=5, kind=kind, variance_reduction=vr, reduction=reduction)
    loss, grad_score, grad_jvp = ref.ssm_loss(score, jvp, **kw)
    v = ref.probes(score.shape, kind=kind, seed=7, counter=5, dtype=np.float64, num_probes=k)
    expected = reduce(ssm_direct(score, jvp.reshape(v.shape), v, vr), reduction)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    assert ref.ssm_loss(score, jvp, return_grad=False, **kw) == pytest.approx(expected, rel=1e-13)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == np.float64 and loss.shape == (3,)
    else:
        assert isinstance(loss, float)
    assert grad_score.shape == score.shape and grad_jvp.shape == jvp.shape
    assert grad_score.dtype == grad_jvp.dtype == np.float64
    scale = 1 / 3 if reduction == "mean" else 1
    np.testing.assert_allclose(grad_jvp, (v / k * scale).reshape(jvp.shape), rtol=1e-15)
    if vr:
        np.testing.assert_allclose(grad_score, score * scale, rtol=1e-15)
    else:
        c = np.einsum("bkij,bij->bk", v, score)
        np.testing.assert_allclose(
            grad_score, np.einsum("bk,bkij->bij", c, v) / k * scale, rtol=1e-12
        )


def test_ssm_loss_float32_score_uses_float32_layout():
    score = rng(22).standard_normal((4, 3)).astype(np.float32)
    jvp = rng(23).standard_normal((4, 3))
    loss = ref.ssm_loss(score, jvp, seed=1, reduction="none", return_grad=False)
    v = ref.probes(score.shape, kind="gaussian", seed=1, dtype=np.float32, num_probes=1)
    expected = ssm_direct(score.astype(np.float64), jvp[:, None], v, True)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)


def finite_difference(f, x, h=1e-5):
    grad = np.zeros(x.shape + np.shape(f(x)))
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        grad[idx] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
    return grad


@pytest.mark.parametrize("vr", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ssm_loss_gradients_match_finite_differences(vr, reduction):
    g = rng(24)
    score = g.standard_normal((3, 4))
    jvp = g.standard_normal((3, 2, 4))
    kw = dict(seed=3, kind="rademacher", variance_reduction=vr, reduction=reduction)
    _, grad_score, grad_jvp = ref.ssm_loss(score, jvp, **kw)
    fd_score = finite_difference(lambda s: ref.ssm_loss(s, jvp, return_grad=False, **kw), score)
    fd_jvp = finite_difference(lambda j: ref.ssm_loss(score, j, return_grad=False, **kw), jvp)
    if reduction == "none":
        # the gradient of each L_b with respect to its own sample
        fd_score = np.stack([fd_score[b, ..., b] for b in range(3)])
        fd_jvp = np.stack([fd_jvp[b, ..., b] for b in range(3)])
    np.testing.assert_allclose(grad_score, fd_score, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(grad_jvp, fd_jvp, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ism_loss_direct_formula_and_gradients(reduction):
    g = rng(25)
    score = g.standard_normal((3, 2, 3))
    jac_trace = g.standard_normal(3)
    loss, grad_score, grad_tr = ref.ism_loss(score, jac_trace, reduction=reduction)
    per_sample = 0.5 * np.sum(score**2, axis=(1, 2)) + jac_trace
    np.testing.assert_allclose(loss, reduce(per_sample, reduction), rtol=1e-14)
    assert ref.ism_loss(score, jac_trace, reduction=reduction, return_grad=False) == (
        pytest.approx(reduce(per_sample, reduction), rel=1e-14)
    )
    fd_score = finite_difference(
        lambda s: ref.ism_loss(s, jac_trace, reduction=reduction, return_grad=False), score
    )
    fd_tr = finite_difference(
        lambda t: ref.ism_loss(score, t, reduction=reduction, return_grad=False), jac_trace
    )
    if reduction == "none":
        fd_score = np.stack([fd_score[b, ..., b] for b in range(3)])
        fd_tr = np.diagonal(fd_tr)
    np.testing.assert_allclose(grad_score, fd_score, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(grad_tr, fd_tr, rtol=1e-8, atol=1e-9)
    scale = 1 / 3 if reduction == "mean" else 1
    np.testing.assert_allclose(grad_tr, np.full(3, scale), rtol=1e-15)


def test_losses_empty_batch():
    assert math.isnan(ref.ssm_loss(np.zeros((0, 3)), np.zeros((0, 3)), seed=0, return_grad=False))
    loss, gs, gj = ref.ssm_loss(np.zeros((0, 3)), np.zeros((0, 2, 3)), seed=0, reduction="sum")
    assert loss == 0.0 and gs.shape == (0, 3) and gj.shape == (0, 2, 3)
    loss, gs, gt = ref.ism_loss(np.zeros((0, 3)), np.zeros(0))
    assert math.isnan(loss) and gs.shape == (0, 3) and gt.shape == (0,)


@pytest.mark.parametrize("variant", ["ism", "ssm-vr", "ssm", "ssm-vr-sphere-3"])
def test_gaussian_exact_score_expected_loss(variant):
    """For N(mu, v I) with its exact score, the expected ISM and SSM losses are -D / (2 v)."""
    n, dim, var = 20000, 3, 0.5
    mu = np.array([1.0, -2.0, 0.5])
    x = mu + math.sqrt(var) * ref.normal((n, dim), seed=31, dtype=np.float64).astype(np.float64)
    score = -(x - mu) / var
    if variant == "ism":
        jac_trace = np.full(n, -dim / var)
        per_sample = ref.ism_loss(score, jac_trace, reduction="none", return_grad=False)
    else:
        kind, k = ("sphere", 3) if variant.endswith("-3") else ("gaussian", None)
        v = ref.probes(score.shape, kind=kind, seed=32, dtype=np.float64, num_probes=k)
        per_sample = ref.ssm_loss(
            score,
            -v / var,
            seed=32,
            kind=kind,
            variance_reduction=variant != "ssm",
            reduction="none",
            return_grad=False,
        )
    stderr = per_sample.std(ddof=1) / math.sqrt(n)
    assert within(per_sample.mean(), -dim / (2 * var), stderr)


# --------------------------------------------------------------------------- bad arguments

A3 = np.eye(3)[None]
X = np.zeros((2, 3))
G = {"kind": "gaussian", "seed": 0}


def div(**kw):
    return ref.divergence(kw.pop("fn", Recorder()), kw.pop("x", X), **{"seed": 0, **kw})


def ssm(score=X, jvp=X, **kw):
    return ref.ssm_loss(score, jvp, seed=0, **kw)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: ref.probes((2, 3), kind="uniform", seed=0), ValueError, "kind"),
        (lambda: ref.probes((), **G), ValueError, "shape"),
        (lambda: ref.probes((2, -1), **G), ValueError, "shape"),
        (lambda: ref.probes((2, 1.5), **G), TypeError, "shape"),
        (lambda: ref.probes((2, 3), num_probes=0, **G), ValueError, "num_probes"),
        (lambda: ref.probes((2, 3), num_probes=2.0, **G), TypeError, "num_probes"),
        (lambda: ref.probes((2, 3), num_probes=True, **G), TypeError, "num_probes"),
        (lambda: ref.probes((2, 3), kind="gaussian", seed=-1), ValueError, "seed"),
        (lambda: ref.probes((0, 3), kind="gaussian", seed=2**64), ValueError, "seed"),
        (lambda: ref.probes((2, 3), counter=-1, **G), ValueError, "counter"),
        (lambda: ref.probes((2, 3), dtype=np.float16, **G), ValueError, "dtype"),
        (lambda: ref.hutchinson(np.eye(3), num_probes=2, **G), ValueError, "A"),
        (lambda: ref.hutchinson(np.ones((1, 2, 3)), num_probes=2, **G), ValueError, "A"),
        (lambda: ref.hutchinson(A3 + 0j, num_probes=2, **G), TypeError, "A"),
        (lambda: ref.hutchinson(A3, num_probes=0, **G), ValueError, "num_probes"),
        (lambda: ref.hutchinson(A3, num_probes=2, kind="normal", seed=0), ValueError, "kind"),
        (lambda: ref.diagonal(A3, num_probes=-1, **G), ValueError, "num_probes"),
        (lambda: ref.hutchpp(A3, num_matvecs=2, **G), ValueError, "num_matvecs"),
        (lambda: ref.hutchpp(A3, num_matvecs=3.0, **G), TypeError, "num_matvecs"),
        (lambda: ref.xtrace(A3, num_matvecs=3, seed=0), ValueError, "num_matvecs"),
        (lambda: ref.xtrace(A3, num_matvecs=8, seed=0), ValueError, "num_matvecs"),
        (lambda: ref.xtrace(A3, num_matvecs=4, kind="cube", seed=0), ValueError, "kind"),
        (lambda: div(fn=3), TypeError, "fn"),
        (lambda: div(fn=lambda y: y[:, :2]), ValueError, "fn"),
        (lambda: div(x=np.zeros((2, 3), int)), TypeError, "x"),
        (lambda: div(x=np.float64(1.0)), ValueError, "x"),
        (lambda: div(method="forward"), ValueError, "method"),
        (lambda: div(step=0.0), ValueError, "step"),
        (lambda: div(step=np.nan), ValueError, "step"),
        (lambda: div(step=[1.0, 1.0, 1.0]), ValueError, "step"),
        (lambda: div(num_probes=0), ValueError, "num_probes"),
        (lambda: div(kind="x"), ValueError, "kind"),
        (lambda: ssm(jvp=np.zeros((2, 4))), ValueError, "jvp"),
        (lambda: ssm(jvp=np.zeros((2, 0, 3))), ValueError, "jvp"),
        (lambda: ssm(jvp=np.zeros((3, 1, 3))), ValueError, "jvp"),
        (lambda: ssm(jvp=np.zeros((2, 3), complex)), TypeError, "jvp"),
        (lambda: ssm(score=np.zeros((2, 3), int)), TypeError, "score"),
        (lambda: ssm(reduction="max"), ValueError, "reduction"),
        (lambda: ssm(kind="x"), ValueError, "kind"),
        (lambda: ref.ism_loss(X, np.zeros(3)), ValueError, "jac_trace"),
        (lambda: ref.ism_loss(X, np.zeros((2, 1))), ValueError, "jac_trace"),
        (lambda: ref.ism_loss(np.float64(1.0), np.zeros(1)), ValueError, "score"),
        (lambda: ref.ism_loss(np.array(["a", "b"]), np.zeros(2)), TypeError, "score"),
        (lambda: ref.ism_loss(X, np.zeros(2), reduction="avg"), ValueError, "reduction"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
