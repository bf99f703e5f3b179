"""Sliced and implicit score matching losses: reference, gradients, closed forms."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import tolerance
from hypothesis import given
from hypothesis import strategies as st

import scorekit
from scorekit import reference as ref

KINDS = ("rademacher", "gaussian", "sphere")


def close(got, want, dtype, scale=1.0):
    want = np.asarray(want, dtype=np.float64)
    tol = 20 * tolerance(dtype)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=tol,
                               atol=tol * max(scale, float(np.max(np.abs(want), initial=0.0))))


@given(B=st.integers(0, 4), rest=st.sampled_from([(5,), (2, 3), (0,), (4100,)]),
       K=st.none() | st.integers(1, 3), kind=st.sampled_from(KINDS), vr=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**64 - 1),
       data=st.integers(0, 2**32 - 1))
def test_ssm_loss_matches_reference(B, rest, K, kind, vr, reduction, dtype, seed, data):
    rng = np.random.default_rng(data)
    score = rng.standard_normal((B, *rest)).astype(dtype)
    jshape = (B, *rest) if K is None else (B, K, *rest)
    jvp = rng.standard_normal(jshape).astype(dtype)
    kw = dict(seed=seed, counter=3, kind=kind, variance_reduction=vr, reduction=reduction)
    loss, gs, gj = scorekit.ssm_loss(score, jvp, **kw)
    wl, wgs, wgj = ref.ssm_loss(score, jvp, **kw)
    assert gs.dtype == dtype and gs.shape == score.shape
    assert gj.dtype == dtype and gj.shape == jvp.shape
    if reduction == "mean" and B == 0:
        assert np.isnan(loss) and np.isnan(wl)
    else:
        close(loss, wl, dtype, scale=float(np.prod(rest)))
    close(gs, wgs, dtype)
    close(gj, wgj, dtype)
    only = scorekit.ssm_loss(score, jvp, return_grad=False, **kw)
    np.testing.assert_array_equal(only, loss)


@given(B=st.integers(0, 4), rest=st.sampled_from([(5,), (2, 3), (0,)]),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       dtype=st.sampled_from([np.float32, np.float64]), data=st.integers(0, 2**32 - 1))
def test_ism_loss_matches_reference(B, rest, reduction, dtype, data):
    rng = np.random.default_rng(data)
    score = rng.standard_normal((B, *rest)).astype(dtype)
    trace = rng.standard_normal(B).astype(dtype)
    loss, gs, gt = scorekit.ism_loss(score, trace, reduction=reduction)
    wl, wgs, wgt = ref.ism_loss(score, trace, reduction=reduction)
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == (B,)
    if reduction == "mean" and B == 0:
        assert np.isnan(loss)
    else:
        close(loss, wl, dtype, scale=10.0)
    close(gs, wgs, dtype)
    close(gt, wgt, dtype)
    assert gt.dtype == dtype


@pytest.mark.parametrize("vr", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ssm_gradients_match_finite_differences(vr, reduction):
    rng = np.random.default_rng(1)
    score = rng.standard_normal((3, 4))
    jvp = rng.standard_normal((3, 2, 4))
    kw = dict(seed=5, kind="gaussian", variance_reduction=vr, reduction=reduction)
    _, gs, gj = scorekit.ssm_loss(score, jvp, **kw)

    def total(s, j):
        loss = scorekit.ssm_loss(s, j, return_grad=False, **kw)
        return float(np.sum(loss))  # for "none": sum_b L_b, whose gradient is row b's own

    h = 1e-6
    for arr, grad, is_score in ((score, gs, True), (jvp, gj, False)):
        fd = np.empty_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = (plus, jvp) if is_score else (score, plus)
            args_m = (minus, jvp) if is_score else (score, minus)
            fd[idx] = (total(*args_p) - total(*args_m)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_ism_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    score, trace = rng.standard_normal((3, 5)), rng.standard_normal(3)
    _, gs, gt = scorekit.ism_loss(score, trace)
    h = 1e-6
    e = np.zeros_like(score)
    e[1, 2] = h
    fd = (scorekit.ism_loss(score + e, trace, return_grad=False)
          - scorekit.ism_loss(score - e, trace, return_grad=False)) / (2 * h)
    assert gs[1, 2] == pytest.approx(fd, rel=1e-6)
    np.testing.assert_allclose(gt, 1 / 3)


@pytest.mark.parametrize("loss", ["ism", "ssm_vr", "ssm"])
def test_expectation_with_the_exact_gaussian_score(loss):
    """For N(mu, v I): score = -(x - mu) / v, J = -I / v; E[loss] = -D / (2 v)."""
    B, D, v = 20000, 6, 0.7
    rng = np.random.default_rng(3)
    mu = rng.standard_normal(D)
    x = mu + np.sqrt(v) * rng.standard_normal((B, D))
    score = -(x - mu) / v
    if loss == "ism":
        per = scorekit.ism_loss(score, np.full(B, -D / v), reduction="none", return_grad=False)
    else:
        probes = scorekit.probes((B, D), kind="gaussian", seed=9, dtype=np.float64)
        per = scorekit.ssm_loss(score, -probes / v, seed=9, kind="gaussian",
                                variance_reduction=(loss == "ssm_vr"), reduction="none",
                                return_grad=False)
    se = per.std(ddof=1) / np.sqrt(B)
    assert abs(per.mean() - (-D / (2 * v))) <= 4 * se


def test_one_probe_shapes_agree():
    rng = np.random.default_rng(4)
    score = rng.standard_normal((3, 2, 5)).astype(np.float32)
    jvp = rng.standard_normal((3, 2, 5)).astype(np.float32)
    a = scorekit.ssm_loss(score, jvp, seed=1, variance_reduction=False)
    b = scorekit.ssm_loss(score, jvp[:, None], seed=1, variance_reduction=False)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2][:, 0])


def test_ssm_bit_identical_across_threads(threads, dtype):
    rng = np.random.default_rng(5)
    score = rng.standard_normal((9, 6000)).astype(dtype)
    jvp = rng.standard_normal((9, 2, 6000)).astype(dtype)
    scorekit.set_num_threads(1)
    want = scorekit.ssm_loss(score, jvp, seed=2, kind="sphere", variance_reduction=False)
    for n in (2, 3):
        scorekit.set_num_threads(n)
        got = scorekit.ssm_loss(score, jvp, seed=2, kind="sphere", variance_reduction=False)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


def test_ssm_rows_of_no_elements_with_many_probes():
    """Rows of no elements: every probe adds 0 terms, so 2**40 probes (jvp holds no data)
    take one probe's work (K of them would take hours: the subprocess's time limit
    catches a hang) and give the reference's losses; the CUDA workspace is one probe's."""
    code = """if True:
        import numpy as np, scorekit
        from scorekit import reference as ref
        score = np.zeros((3, 0), np.float32)
        for vr in (True, False):
            got = scorekit.ssm_loss(score, np.zeros((3, 2**40, 0), np.float32), seed=4,
                                    variance_reduction=vr, reduction="none")
            want = ref.ssm_loss(score, np.zeros((3, 3, 0), np.float32), seed=4,
                                variance_reduction=vr, reduction="none")
            np.testing.assert_array_equal(got[0], np.asarray(want[0], np.float32))
            assert got[1].shape == (3, 0) and got[2].shape == (3, 2**40, 0)
        print("ok")
    """
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    if scorekit.build_info()["cuda_compiled"]:
        from scorekit import _cuda
        assert _cuda.ssm_work(3, 2**40, 0) == _cuda.ssm_work(3, 1, 0)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda s, j: scorekit.ssm_loss(s, j[:, :3], seed=0), ValueError, "jvp must have score's shape"),
    (lambda s, j: scorekit.ssm_loss(s, j[None], seed=0), ValueError, "jvp must have score's shape"),
    (lambda s, j: scorekit.ssm_loss(s, j.astype(np.float64), seed=0), TypeError, "jvp has dtype"),
    (lambda s, j: scorekit.ssm_loss(s, j, seed=0, kind="uniform"), ValueError, "kind must be"),
    (lambda s, j: scorekit.ssm_loss(s, j, seed=0, reduction="max"), ValueError, "reduction must"),
    (lambda s, j: scorekit.ssm_loss(s, j, seed=0, variance_reduction=1), TypeError,
     "variance_reduction must be a bool"),
    (lambda s, j: scorekit.ssm_loss(s, j, seed=2**64), ValueError, "seed must be"),
    (lambda s, j: scorekit.ssm_loss(s.astype(np.int32), j, seed=0), TypeError, "score must be"),
    (lambda s, j: scorekit.ism_loss(s, np.zeros(3, np.float32)), ValueError,
     r"jac_trace must have shape \(B,\) = \(4,\)"),
    (lambda s, j: scorekit.ism_loss(s, np.zeros(4)), TypeError, "jac_trace has dtype"),
    (lambda s, j: scorekit.ism_loss(s, np.zeros(4, np.float32), return_grad="no"), TypeError,
     "return_grad must be a bool"),
])
def test_bad_input(call, exc, pattern):
    s = np.ones((4, 5), np.float32)
    with pytest.raises(exc, match=pattern):
        call(s, s.copy())
