"""Probes and trace / diagonal estimation: against scorekit.reference and closed forms."""

import numpy as np
import pytest
from conftest import tolerance
from hypothesis import given
from hypothesis import strategies as st

import scorekit
from scorekit import reference as ref

KINDS = ("rademacher", "gaussian", "sphere")


def matvec_of(A):
    """The batched product v -> A_b v for explicit (B, D, D) matrices."""
    return lambda v: np.einsum("bij,bj->bi", A, v)


def batched_matvec_of(A):
    return lambda v: np.einsum("bij,bmj->bmi", A, v)


def random_matrices(B, D, seed=0, symmetric=False):
    A = np.random.default_rng(seed).standard_normal((B, D, D))
    return (A + A.transpose(0, 2, 1)) / 2 if symmetric else A


def decaying(B, D, seed=0, rate=0.7):
    """PSD matrices with eigenvalues rate**i in random bases."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((B, D, D)))
    return (Q * rate ** np.arange(D)) @ Q.transpose(0, 2, 1)


# ----------------------------------------------------------------- probes ---

@given(B=st.integers(0, 4), rest=st.lists(st.integers(0, 9), min_size=0, max_size=2),
       K=st.none() | st.integers(1, 4), kind=st.sampled_from(KINDS),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**64 - 1),
       counter=st.integers(0, 2**64 - 1))
def test_probes_match_reference(B, rest, K, kind, dtype, seed, counter):
    shape = (B, *rest)
    got = scorekit.probes(shape, kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=K)
    want = ref.probes(shape, kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=K)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tolerance(dtype), atol=tolerance(dtype))


@pytest.mark.parametrize("kind,noise", [("gaussian", scorekit.normal),
                                        ("rademacher", scorekit.rademacher)])
def test_probes_are_rows_of_the_noise_stream(kind, noise, dtype):
    """Probe k of sample b is row b*K + k of one draw: the very same bits."""
    got = scorekit.probes((3, 5, 7), kind=kind, seed=11, counter=2, dtype=dtype, num_probes=4)
    whole = noise((3 * 4, 5, 7), seed=11, counter=2, dtype=dtype)
    np.testing.assert_array_equal(got.reshape(12, 5, 7), whole)
    one = scorekit.probes((3, 5, 7), kind=kind, seed=11, counter=2, dtype=dtype)
    np.testing.assert_array_equal(one, noise((3, 5, 7), seed=11, counter=2, dtype=dtype))


def test_sphere_probes_have_norm_sqrt_d(dtype):
    v = scorekit.probes((6, 3, 1000), kind="sphere", seed=1, dtype=dtype, num_probes=2)
    norms = np.linalg.norm(v.reshape(12, -1).astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, np.sqrt(3000), rtol=10 * np.finfo(dtype).eps * 3000**0.5)
    g = scorekit.normal((12, 3000), seed=1, dtype=dtype).astype(np.float64)
    cos = np.sum(v.reshape(12, -1) * g, axis=1) / (norms * np.linalg.norm(g, axis=1))
    np.testing.assert_allclose(cos, 1.0, rtol=1e-6)  # same direction as the normals


@pytest.mark.parametrize("kind", KINDS)
def test_probes_have_identity_second_moment(kind):
    v = scorekit.probes((20000, 4), kind=kind, seed=5, dtype=np.float64)
    second = v.T @ v / v.shape[0]
    np.testing.assert_allclose(second, np.eye(4), atol=0.05)


def test_probes_independent_of_threads(threads, dtype):
    want = scorekit.probes((7, 50001), kind="sphere", seed=3, dtype=dtype, num_probes=2)
    for n in (1, 2, 3):
        scorekit.set_num_threads(n)
        np.testing.assert_array_equal(
            scorekit.probes((7, 50001), kind="sphere", seed=3, dtype=dtype, num_probes=2), want)


# ------------------------------------------------------------- Hutchinson ---

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("K", [1, 2, 33])
def test_hutchinson_matches_reference(kind, K, dtype):
    A = random_matrices(3, 9, seed=1)
    got = scorekit.hutchinson(matvec_of(A.astype(dtype)), (3, 9), num_probes=K, kind=kind, seed=4,
                              counter=1, dtype=dtype)
    want_est, want_se = ref.hutchinson(A.astype(dtype), num_probes=K, kind=kind, seed=4,
                                       counter=1, dtype=dtype)
    tol = 50 * tolerance(dtype)
    np.testing.assert_allclose(got.estimate, want_est, rtol=tol, atol=tol)
    if K == 1:
        assert np.all(np.isnan(got.stderr)) and np.all(np.isnan(want_se))
    else:
        np.testing.assert_allclose(got.stderr, want_se, rtol=tol, atol=tol)
    np.testing.assert_array_equal(got.num_matvecs, [K] * 3)
    assert got.estimate.dtype == np.float64


def test_hutchinson_blocks_and_batching_do_not_change_results():
    A = random_matrices(4, 6, seed=2)
    runs = [scorekit.hutchinson(matvec_of(A), (4, 6), num_probes=20, seed=9, block=b)
            for b in (1, 7, 20)]
    runs.append(scorekit.hutchinson(batched_matvec_of(A), (4, 6), num_probes=20, seed=9,
                                    batched=True, block=6))
    for r in runs[1:]:
        np.testing.assert_array_equal(r.estimate, runs[0].estimate)
        np.testing.assert_array_equal(r.stderr, runs[0].stderr)


def test_rademacher_is_exact_on_a_diagonal_and_sphere_on_a_multiple_of_identity():
    d = np.random.default_rng(3).standard_normal((3, 8))
    r = scorekit.hutchinson(lambda v: d * v, (3, 8), num_probes=5, kind="rademacher", seed=1)
    np.testing.assert_allclose(r.estimate, d.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(r.stderr, 0, atol=1e-14)
    r = scorekit.hutchinson(lambda v: 2.5 * v, (2, 3, 4), num_probes=5, kind="sphere", seed=1)
    np.testing.assert_allclose(r.estimate, 2.5 * 12, rtol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_single_probe_variance_matches_its_closed_form(kind):
    A = random_matrices(3, 6, seed=4)
    S = (A + A.transpose(0, 2, 1)) / 2
    fro2 = np.sum(S * S, axis=(1, 2))
    n = 6
    exact = {
        "rademacher": 2 * (fro2 - np.sum(np.diagonal(A, axis1=1, axis2=2) ** 2, axis=1)),
        "gaussian": 2 * fro2,
        "sphere": 2 * n / (n + 2) * (fro2 - np.trace(A, axis1=1, axis2=2) ** 2 / n),
    }[kind]
    N = 40000
    r = scorekit.hutchinson(batched_matvec_of(A), (3, 6), num_probes=N, kind=kind, seed=6,
                            batched=True, block=N)
    sample_var = r.stderr**2 * N
    # the standard error of a sample variance is about var * sqrt(2 / N) for near-Gaussian t
    np.testing.assert_allclose(sample_var, exact, rtol=8 * np.sqrt(2 / N) * 2)


def test_adaptive_stopping_reaches_its_tolerance_and_uses_the_same_probes():
    A = random_matrices(5, 10, seed=7, symmetric=True) * np.arange(1, 6)[:, None, None]
    r = scorekit.hutchinson(matvec_of(A), (5, 10), num_probes=8, seed=2, atol=0.3,
                            max_probes=4000, block=4)
    stopped = r.num_matvecs < 4000
    assert np.all(r.stderr[stopped] <= 0.3) and np.all(r.stderr[~stopped] > 0.3)
    assert stopped.sum() >= 2 and len(set(r.num_matvecs)) > 2  # stopped per sample
    for b in range(5):  # each sample's estimate is the fixed-budget one over its first n probes
        fixed = scorekit.hutchinson(matvec_of(A), (5, 10), num_probes=int(r.num_matvecs[b]),
                                    seed=2, max_probes=4000)
        assert fixed.estimate[b] == r.estimate[b]
    capped = scorekit.hutchinson(matvec_of(A), (5, 10), num_probes=8, seed=2, atol=1e-9,
                                 max_probes=40)
    np.testing.assert_array_equal(capped.num_matvecs, [40] * 5)


def test_standard_errors_are_calibrated():
    """Coverage of the true trace by estimate +- 2 stderr over 2000 independent runs."""
    B = 2000
    A = np.broadcast_to(random_matrices(1, 8, seed=8, symmetric=True), (B, 8, 8))
    r = scorekit.hutchinson(batched_matvec_of(A), (B, 8), num_probes=60, kind="gaussian",
                            seed=10, batched=True)
    covered = np.abs(r.estimate - np.trace(A[0])) <= 2 * r.stderr
    assert 0.93 <= covered.mean() <= 0.975


# ------------------------------------------------------- Hutch++ / XTrace ---

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [3, 10, 17])
def test_hutchpp_matches_reference(kind, m):
    A = random_matrices(3, 12, seed=11)
    got = scorekit.hutchpp(matvec_of(A), (3, 12), num_matvecs=m, kind=kind, seed=5, counter=3)
    want_est, want_se = ref.hutchpp(A, num_matvecs=m, kind=kind, seed=5, counter=3,
                                    dtype=np.float64)
    np.testing.assert_allclose(got.estimate, want_est, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.stderr, want_se, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got.num_matvecs, [m] * 3)


@pytest.mark.parametrize("D,m", [(2, 9), (3, 12), (1, 6), (4, 12)])
def test_hutchpp_counts_the_products_it_makes(D, m):
    """With s = m // 3 sketch probes above D, Q has D rows: num_matvecs counts
    s + min(s, D) + g products, as many as matvec was asked for; the estimate stays exact."""
    A = random_matrices(2, D, seed=15)
    calls = [0]

    def matvec(v):  # one product per sample and call
        calls[0] += 1
        return matvec_of(A)(v)

    got = scorekit.hutchpp(matvec, (2, D), num_matvecs=m, seed=3)
    np.testing.assert_array_equal(got.num_matvecs, [calls[0]] * 2)
    assert calls[0] == m - max(m // 3 - D, 0)
    np.testing.assert_allclose(got.estimate, np.trace(A, axis1=1, axis2=2), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [4, 11, 24])
def test_xtrace_matches_reference(kind, m):
    A = random_matrices(3, 15, seed=12)
    got = scorekit.xtrace(matvec_of(A), (3, 15), num_matvecs=m, kind=kind, seed=6)
    want_est, want_err = ref.xtrace(A, num_matvecs=m, kind=kind, seed=6, dtype=np.float64)
    np.testing.assert_allclose(got.estimate, want_est, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got.stderr, want_err, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(got.num_matvecs, [m // 2 * 2] * 3)


def low_rank(B, D, r, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, D, r)) @ rng.standard_normal((B, r, D))


@pytest.mark.parametrize("rank", [1, 4])
def test_hutchpp_and_xtrace_are_exact_below_their_sketch_size(rank):
    A = low_rank(4, 20, rank, seed=13)
    tr = np.trace(A, axis1=1, axis2=2)
    pp = scorekit.hutchpp(matvec_of(A), (4, 20), num_matvecs=3 * 4, seed=1)   # s = 4
    xt = scorekit.xtrace(matvec_of(A), (4, 20), num_matvecs=2 * 5, seed=1)    # s = 5
    scale = np.abs(A).sum(axis=(1, 2))
    np.testing.assert_allclose(pp.estimate, tr, atol=1e-10 * scale.max())
    np.testing.assert_allclose(xt.estimate, tr, atol=1e-10 * scale.max())
    assert np.all(xt.stderr <= 1e-9 * scale)


def test_xtrace_rank_deficient_sketch_matches_reference():
    """rank(A) < s - 1: R is singular and the projected path is used."""
    A = low_rank(2, 16, 2, seed=14) + 0.0
    got = scorekit.xtrace(matvec_of(A), (2, 16), num_matvecs=12, seed=2)
    want_est, _ = ref.xtrace(A, num_matvecs=12, seed=2, dtype=np.float64)
    np.testing.assert_allclose(got.estimate, want_est, rtol=1e-8)


@pytest.mark.parametrize("D,m", [(2, 4), (3, 6), (4, 6), (5, 8)])
def test_xtrace_with_repeated_rademacher_vectors_in_small_dimensions(D, m):
    """Small D: Rademacher test vectors repeat; estimates stay finite and match the
    reference wherever its leave-one-out basis is determined."""
    B = 200
    A = random_matrices(B, D, seed=D)
    got = scorekit.xtrace(matvec_of(A), (B, D), num_matvecs=m, kind="rademacher", seed=1)
    assert np.all(np.isfinite(got.estimate)) and np.all(np.isfinite(got.stderr))
    want, _ = ref.xtrace(A, num_matvecs=m, kind="rademacher", seed=1, dtype=np.float64)
    agree = np.isclose(got.estimate, want, rtol=1e-8, atol=1e-8)
    assert agree.mean() > 0.5  # differ only where the reference's basis is arbitrary
    iso = scorekit.xtrace(lambda v: 2 * v, (B, D), num_matvecs=m, kind="sphere", seed=1)
    np.testing.assert_allclose(iso.estimate, 2 * D, rtol=1e-9)


def test_variance_reduction_on_a_decaying_spectrum():
    """Same budget, 300 runs: XTrace < Hutch++ < Hutchinson in mean absolute error."""
    B, D, m = 300, 40, 24
    A = np.broadcast_to(decaying(1, D, seed=15), (B, D, D))
    tr = np.trace(A[0])
    err = {
        "hutchinson": scorekit.hutchinson(batched_matvec_of(A), (B, D), num_probes=m, seed=3,
                                          batched=True).estimate,
        "hutchpp": scorekit.hutchpp(batched_matvec_of(A), (B, D), num_matvecs=m, seed=3,
                                    batched=True).estimate,
        "xtrace": scorekit.xtrace(batched_matvec_of(A), (B, D), num_matvecs=m, seed=3,
                                  batched=True).estimate,
    }
    mae = {k: np.mean(np.abs(v - tr)) for k, v in err.items()}
    assert mae["xtrace"] < mae["hutchpp"] < mae["hutchinson"]
    # unbiased: the means lie within a few standard errors of the trace
    for v in err.values():
        assert abs(v.mean() - tr) <= 4 * v.std(ddof=1) / np.sqrt(B) + 1e-12


def test_xtrace_error_estimate_tracks_the_error():
    B, D = 400, 30
    A = np.broadcast_to(decaying(1, D, seed=16, rate=0.8), (B, D, D))
    r = scorekit.xtrace(batched_matvec_of(A), (B, D), num_matvecs=16, seed=4, batched=True)
    rms_err = np.sqrt(np.mean((r.estimate - np.trace(A[0])) ** 2))
    assert 0.3 < np.median(r.stderr) / rms_err < 3


# ---------------------------------------------------------------- diagonal ---

@pytest.mark.parametrize("kind", KINDS)
def test_diagonal_matches_reference(kind):
    A = random_matrices(3, 7, seed=17)
    got = scorekit.diagonal(matvec_of(A), (3, 7), num_probes=25, kind=kind, seed=8, block=6)
    want_est, want_se = ref.diagonal(A, num_probes=25, kind=kind, seed=8, dtype=np.float64)
    np.testing.assert_allclose(got.estimate, want_est, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.stderr, want_se, rtol=1e-10, atol=1e-12)


def test_diagonal_is_exact_on_a_diagonal_with_rademacher_probes():
    d = np.random.default_rng(18).standard_normal((2, 3, 4))
    r = scorekit.diagonal(lambda v: d * v, (2, 3, 4), num_probes=3, seed=1)
    np.testing.assert_allclose(r.estimate, d, rtol=1e-15)
    np.testing.assert_allclose(r.stderr, 0, atol=1e-15)
    assert r.estimate.shape == (2, 3, 4)


# -------------------------------------------------------------- divergence ---

def test_divergence_exact_and_central_of_a_linear_map(dtype):
    M = np.random.default_rng(19).standard_normal((6, 6))
    x = np.random.default_rng(20).standard_normal((3, 6)).astype(dtype)
    fn = lambda y: (y @ M.T.astype(y.dtype)).astype(y.dtype)  # noqa: E731
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(scorekit.divergence(fn, x, method="exact"), np.trace(M),
                               rtol=tol, atol=tol)
    got = scorekit.divergence(fn, x, num_probes=4, kind="gaussian", seed=2)
    want = ref.divergence(fn, x, num_probes=4, kind="gaussian", seed=2)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_divergence_of_a_quadratic_and_probe_reuse():
    fn = lambda y: y**2  # divergence 2 sum(x)  # noqa: E731
    x = np.random.default_rng(21).standard_normal((4, 2, 3))
    np.testing.assert_allclose(scorekit.divergence(fn, x, method="exact"),
                               2 * x.reshape(4, -1).sum(axis=1), rtol=1e-8)
    a = scorekit.divergence(fn, x, num_probes=3, kind="rademacher", seed=7, counter=5)
    b = scorekit.divergence(fn, x, num_probes=3, kind="rademacher", seed=7, counter=5)
    np.testing.assert_array_equal(a, b)
    want = ref.divergence(fn, x, num_probes=3, kind="rademacher", seed=7, counter=5)
    np.testing.assert_allclose(a, want, rtol=1e-8)


# --------------------------------------------------------------- bad input ---

def _ok(v):
    return 2 * v


@pytest.mark.parametrize("matvec,exc,pattern", [
    (lambda v: v[:, :2], ValueError, r"matvec returned shape \(3, 2\), expected \(3, 4\)"),
    (lambda v: v.astype(np.int64), TypeError, "matvec must return a float32 or float64 array"),
    (lambda v: v.astype(complex), TypeError, "matvec must return a float32 or float64 array"),
    (lambda v: v * np.nan, ValueError, "matvec returned non-finite values"),
    ("not callable", TypeError, "matvec must be callable"),
])
@pytest.mark.parametrize("estimator", ["hutchinson", "hutchpp", "xtrace", "diagonal"])
def test_bad_matvec(estimator, matvec, exc, pattern):
    budget = "num_probes" if estimator in ("hutchinson", "diagonal") else "num_matvecs"
    with pytest.raises(exc, match=pattern):
        getattr(scorekit, estimator)(matvec, (3, 4), seed=0, **{budget: 6})


@pytest.mark.parametrize("out,exc,pattern", [
    (lambda v: np.ma.masked_array(v, mask=True), TypeError, "matvec returned a masked array"),
    (lambda v: v.astype(np.float16), TypeError, "float32 or float64 array, got dtype float16"),
])
def test_matvec_outputs_that_lose_data(out, exc, pattern):
    with pytest.raises(exc, match=pattern):
        scorekit.hutchinson(out, (3, 4), num_probes=2, seed=0)


def test_first_stopping_check_is_at_num_probes():
    calls = []

    def mv(v):
        calls.append(v.shape[1])
        return np.zeros_like(v)  # stderr 0: every sample stops at the first check

    r = scorekit.hutchinson(mv, (2, 3), num_probes=8, seed=0, atol=1e-3, block=3, batched=True)
    assert calls == [3, 3, 2]
    np.testing.assert_array_equal(r.num_matvecs, [8, 8])


def test_non_finite_products_of_stopped_samples_are_ignored():
    state = {"round": 0}

    def mv(v):
        state["round"] += 1
        out = np.array(v) * np.array([[[0.0]], [[1.0]]])  # sample 0 exact, sample 1 noisy
        if state["round"] > 1:
            out[0] = np.nan  # sample 0 has stopped by then
        return out

    r = scorekit.hutchinson(mv, (2, 5), num_probes=4, kind="gaussian", seed=0, atol=1e-6,
                            max_probes=12, block=4, batched=True)
    np.testing.assert_array_equal(r.num_matvecs, [4, 12])


def nan_at(where):
    """A matvec (one probe per call) that is 2 A v, with nan in sample b's product on
    call c for each (c, b) in ``where``; it counts its calls."""
    calls = []

    def mv(v):
        out = 2 * np.array(v)
        for c, b in where:
            if c == len(calls):
                out[b] = np.nan
        calls.append(1)
        return out
    return mv, calls


def test_the_first_non_finite_product_is_named():
    """The error names the earliest round with a non-finite sample, its lowest sample and
    that sample's first such probe (calls 2r and 2r + 1 are probes of round r)."""
    mv, calls = nan_at([(3, 2), (5, 0), (2, 3), (7, 1)])
    with pytest.raises(ValueError, match=r"non-finite values \(sample 2, probe 3\)"):
        scorekit.hutchinson(mv, (4, 3), num_probes=8, block=2, seed=0)
    assert len(calls) == 4  # raised after the round
    mv, calls = nan_at([(1, 1), (0, 1)])
    with pytest.raises(ValueError, match=r"non-finite values \(sample 1, probe 0\)"):
        scorekit.hutchinson(mv, (4, 3), num_probes=8, block=2, seed=0, rtol=1e-3)


def test_first_nonfinite_orders_rounds_before_samples():
    first_nonfinite = scorekit.trace.first_nonfinite
    starts = [0, 3, 5]
    assert first_nonfinite(np.array([-1, -1]), starts) is None
    assert first_nonfinite(np.array([6, 4, 3, -1]), starts) == (1, 4)
    assert first_nonfinite(np.array([2, 0, 6]), starts) == (0, 2)
    assert first_nonfinite(np.array([-1, 5, 7]), starts) == (1, 5)


def test_divergence_names_the_non_finite_sample():
    def fn(y):
        out = np.array(y)
        out[1] = np.nan
        return out
    with pytest.raises(ValueError, match=r"fn returned non-finite values \(sample 1, probe 0\)"):
        scorekit.divergence(fn, np.ones((3, 2)), num_probes=2, seed=0)
    with pytest.raises(ValueError, match=r"fn returned non-finite values$"):
        scorekit.divergence(fn, np.ones((3, 2)), method="exact")


def test_probe_budgets_beyond_the_stream_are_rejected():
    with pytest.raises(ValueError, match=r"max_probes = .* is too large"):
        scorekit.hutchinson(_ok, (2, 4), num_probes=2, seed=1, atol=1.0, max_probes=2**62)
    with pytest.raises(ValueError, match=r"num_probes = .* is too large"):
        scorekit.diagonal(_ok, (2, 4), num_probes=2**62, seed=1)
    with pytest.raises(ValueError, match=r"num_matvecs // 2 = 4 test vectors exceed"):
        scorekit.xtrace(_ok, (2, 3), num_matvecs=8, seed=1)


def test_matvec_cannot_write_its_input():
    def writes(v):
        v[...] = 0
        return v
    with pytest.raises(ValueError, match="read-only"):
        scorekit.hutchinson(writes, (3, 4), num_probes=2, seed=0)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: scorekit.probes((3, 4), kind="cauchy", seed=0), ValueError, "kind must be one of"),
    (lambda: scorekit.probes((3, 4), kind="gaussian", seed=0, num_probes=0), ValueError,
     "num_probes must be >= 1"),
    (lambda: scorekit.probes((), kind="gaussian", seed=0), ValueError, "shape must have"),
    (lambda: scorekit.probes((3, 4), kind="gaussian", seed=-1), ValueError, "seed must be"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=0, seed=0), ValueError,
     "num_probes must be >= 1"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=1.5, seed=0), TypeError, "num_probes"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=1, seed=0, atol=0.1), ValueError,
     "num_probes must be >= 2 when a tolerance"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=4, seed=0, rtol=-1), ValueError,
     "rtol must be finite and >= 0"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=4, seed=0, max_probes=2), ValueError,
     "max_probes must be >= num_probes"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=4, seed=0, kind="normal"), ValueError,
     "kind must be one of"),
    (lambda: scorekit.hutchinson(_ok, (3, 4), num_probes=4, seed=0, dtype=np.int32), TypeError,
     "dtype must be"),
    (lambda: scorekit.hutchpp(_ok, (3, 4), num_matvecs=2, seed=0), ValueError,
     "num_matvecs must be >= 3"),
    (lambda: scorekit.xtrace(_ok, (3, 4), num_matvecs=3, seed=0), ValueError,
     "num_matvecs must be >= 4"),
    (lambda: scorekit.divergence(_ok, np.ones((2, 3)), method="forward", seed=0), ValueError,
     "method must be one of"),
    (lambda: scorekit.divergence(_ok, np.ones((2, 3))), ValueError, "pass seed="),
    (lambda: scorekit.divergence(_ok, np.ones((2, 3)), seed=0, step=-1.0), ValueError,
     "step must be > 0"),
    (lambda: scorekit.divergence(lambda y: y[:, :1], np.ones((2, 3)), seed=0), ValueError,
     r"fn returned shape \(2, 1\)"),
])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_empty_batches():
    r = scorekit.hutchinson(_ok, (0, 4), num_probes=3, seed=0)
    assert r.estimate.shape == (0,)
    assert scorekit.probes((0, 4), kind="sphere", seed=0).shape == (0, 4)
    r = scorekit.hutchinson(_ok, (2, 0), num_probes=3, seed=0)
    np.testing.assert_array_equal(r.estimate, [0.0, 0.0])


def test_probes_into_out():
    out = np.empty((3, 2, 5), np.float64)
    got = scorekit.probes((3, 5), kind="sphere", seed=2, num_probes=2, out=out)
    assert got is out
    np.testing.assert_array_equal(out, scorekit.probes((3, 5), kind="sphere", seed=2,
                                                       num_probes=2, dtype=np.float64))
    with pytest.raises(ValueError, match=r"out must have shape \(3, 5\), got \(3, 2, 5\)"):
        scorekit.probes((3, 5), kind="sphere", seed=2, out=out)
