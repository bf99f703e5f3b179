"""The CUDA layer end to end without a GPU: every routed function called with
stand-in CUDA arrays (tests/cuda_standin.py) gives the CPU path's results bit
for bit, its launchers done by the CPU backend. This checks what the layer
passes to the kernels (pointers, shapes, offsets, per-sample parameters,
outputs, reductions) and the sampling drivers' GPU path; tests/test_cuda.py
checks the kernels themselves on a GPU, tests/test_cuda_host.py under a host
emulation."""

import numpy as np
import pytest

import scorekit
from scorekit import _gpu

from cuda_standin import (CpuBackedCuda, DLPackOnlyArray, DLPackOnlyNamespace, HostCudaArray,
                          HostFramework, bridge_from_dlpack, get, put)


@pytest.fixture
def gpu(monkeypatch):
    backend = CpuBackedCuda()
    monkeypatch.setattr(_gpu, "_cuda", backend)
    monkeypatch.setitem(_gpu._FRAMEWORKS, "hostcuda", HostFramework)
    return backend


def batch(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def same(got, want):
    assert isinstance(got, HostCudaArray), type(got)
    np.testing.assert_array_equal(got.data, want)
    assert got.dtype == np.asarray(want).dtype


@pytest.mark.parametrize("kind", ["normal", "uniform", "rademacher"])
def test_noise(gpu, kind, dtype):
    for shape, offset in [((5,), 0), ((3, 7), 2), ((2, 3, 4), 5)]:
        out = put(np.zeros(shape, dtype))
        got = getattr(scorekit, kind)(shape, seed=11, counter=3, offset=offset, out=out)
        assert got is out
        same(out, getattr(scorekit, kind)(shape, seed=11, counter=3, offset=offset, dtype=dtype))


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_probes(gpu, kind, dtype):
    for shape, K in [((3, 5), None), ((2, 4097), 2), ((4, 2, 3), 3)]:
        full = shape if K is None else (shape[0], K) + shape[1:]
        out = put(np.zeros(full, dtype))
        scorekit.probes(shape, kind=kind, seed=9, counter=4, num_probes=K, offset=3, out=out)
        same(out, scorekit.probes(shape, kind=kind, seed=9, counter=4, num_probes=K, offset=3,
                                  dtype=dtype))


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (2, 3, 5)])
def test_elementwise_steps(gpu, shape, dtype):
    x, s = batch(shape, dtype), batch(shape, dtype, 1)
    sig = np.linspace(0.1, 2.0, shape[0]).astype(dtype)
    for sigma in (0.7, sig, put(sig)):
        got = scorekit.perturb(put(x), sigma, seed=3, counter=9, offset=2, scale=sig[::-1].copy())
        same(got, scorekit.perturb(x, get(sigma), seed=3, counter=9, offset=2,
                                   scale=sig[::-1].copy()))
        got = scorekit.langevin_step(put(x), put(s), sigma, seed=3, counter=9, offset=2)
        same(got, scorekit.langevin_step(x, s, get(sigma), seed=3, counter=9, offset=2))
    a = np.linspace(0.5, 1.5, shape[0])  # float64: cast to x's dtype as on the CPU
    got = scorekit.noisy_affine_step(put(x), put(s), a, -0.25, put(a.astype(dtype)), seed=5,
                                     counter=3, offset=2)
    want = scorekit.noisy_affine_step(x, s, a, -0.25, a.astype(dtype), seed=5, counter=3,
                                      offset=2)
    same(got.x, want.x)
    same(got.x_mean, want.x_mean)
    xd = put(x)  # in place
    assert scorekit.perturb(xd, 0.5, seed=1, out=xd) is xd
    same(xd, scorekit.perturb(x, 0.5, seed=1))


def test_calls_with_device_arguments_only_enqueue_kernels(gpu, monkeypatch):
    """What README says can be captured in a CUDA graph: the elementwise steps and the
    losses with every array on the device (parameters as numbers, or as device arrays
    within device_value_checks(False)) returning device arrays (reduced losses within
    device_losses()), make no host read, no host-to-device copy and no synchronisation;
    a float loss is read back, and a host array parameter makes a copy."""
    x, s = put(batch((4, 6), np.float32)), put(batch((4, 6), np.float32, 1))
    sig, h = put(np.array([0.5, 1.0, 2.0, 0.3], np.float32)), put(np.array([0.3]))[0]
    logp = put(np.zeros(4))
    waits = []
    host, sync = HostFramework.host, HostFramework.synchronize
    monkeypatch.setattr(HostFramework, "host", staticmethod(lambda a: waits.append(1) or host(a)))
    monkeypatch.setattr(HostFramework, "synchronize",
                        classmethod(lambda cls, a: waits.append(1) or sync(a)))
    gpu.calls.clear()
    with scorekit.device_value_checks(False):
        for p in (0.5, sig, h):
            scorekit.perturb(x, p, seed=1, scale=p)
            scorekit.langevin_step(x, s, p, seed=1)
            scorekit.noisy_affine_step(x, s, p, p, p, seed=1)
            scorekit.corrector_step(x, s, snr=0.1, alpha=p, seed=1)
            scorekit.dsm_loss(s, p, seed=1, weight=p, reduction="none")
            scorekit.mala_propose(x, s, p, seed=1)
            scorekit.mala_accept(x, s, logp, x, s, logp, p, seed=1)
        scorekit.ssm_loss(s, put(batch((4, 2, 6), np.float32, 2)), seed=1, reduction="none")
        scorekit.ism_loss(s, put(np.ones(4, np.float32)), reduction="none")
        with scorekit.device_losses():  # reduced losses as device arrays
            for reduction in ("mean", "sum"):
                scorekit.dsm_loss(s, sig, seed=1, reduction=reduction)
                scorekit.ssm_loss(s, s, seed=1, reduction=reduction)
                scorekit.ism_loss(s, sig, reduction=reduction)
    assert waits == [] and "upload" not in gpu.calls and len(gpu.calls) > 20
    assert gpu.calls.count("reduce_losses") == 6
    scorekit.dsm_loss(s, 0.5, seed=1)  # a float: read back
    assert waits == [1]
    scorekit.perturb(x, np.ones(4, np.float32), seed=1)
    assert gpu.calls.count("upload") == 1


def test_device_value_checks_off_broadcasts_0d_parameters(gpu, monkeypatch):
    """Within device_value_checks(False) a 0-d CUDA parameter of the call's framework is
    broadcast to (B,) values on the device, not read back, cast to the call's dtype as a
    number is (the same bits as the number); outside, it is read and checked."""
    x, s = batch((4, 6), np.float32), batch((4, 6), np.float32, 1)
    h, neg = put(np.array(0.3)), put(np.array(-1.0, np.float32))  # h float64: cast to float32
    with pytest.raises(ValueError, match="sigma must be > 0"):
        scorekit.perturb(put(x), neg, seed=1)
    reads = []
    host = HostFramework.host
    monkeypatch.setattr(HostFramework, "host", staticmethod(lambda a: reads.append(1) or host(a)))
    with scorekit.device_value_checks(False):
        same(scorekit.perturb(put(x), h, seed=1, scale=h), scorekit.perturb(x, 0.3, seed=1,
                                                                             scale=0.3))
        same(scorekit.langevin_step(put(x), put(s), h, seed=2),
             scorekit.langevin_step(x, s, 0.3, seed=2))
        same(scorekit.noisy_affine_step(put(x), put(s), h, h, h, seed=4).x,
             scorekit.noisy_affine_step(x, s, 0.3, 0.3, 0.3, seed=4).x)
        same(scorekit.mala_propose(put(x), put(s), h, seed=3),
             scorekit.mala_propose(x, s, 0.3, seed=3))
        same(scorekit.dsm_loss(put(s), h, seed=5, reduction="none")[0],
             scorekit.dsm_loss(s, 0.3, seed=5, reduction="none")[0])
        scorekit.perturb(put(x), neg, seed=1)  # not checked
    assert reads == []
    with pytest.raises(TypeError, match="sigma must be a float32 or float64 array"):
        with scorekit.device_value_checks(False):
            scorekit.perturb(put(x), put(np.array(1, np.int32)), seed=1)


def test_device_value_checks_off_reads_no_parameter_back(gpu, monkeypatch):
    """Within device_value_checks(False) a (B,) CUDA parameter is not copied to the host
    (no wait): the same results for valid values, no error for values the checks refuse,
    and the layout checks still hold; the setting is per thread, nests and ends."""
    import threading
    x, s = batch((4, 6), np.float32), batch((4, 6), np.float32, 1)
    sig = put(np.array([0.5, 1.0, 2.0, 0.3], np.float32))
    bad = put(np.array([-1.0, np.nan, 1.0, 0.0], np.float32))
    reads = []
    host = HostFramework.host
    monkeypatch.setattr(HostFramework, "host", staticmethod(lambda a: reads.append(1) or host(a)))
    checked = get(scorekit.perturb(put(x), sig, seed=1))
    checked_loss = get(scorekit.dsm_loss(put(s), sig, seed=2, reduction="none")[0])
    assert len(reads) == 2
    with scorekit.device_value_checks(False):
        same(scorekit.perturb(put(x), sig, seed=1), checked)
        same(scorekit.dsm_loss(put(s), sig, seed=2, reduction="none")[0], checked_loss)
        # sqrt(2 h) on the device, in float64 as the CPU does
        same(scorekit.mala_propose(put(x), put(s), sig, seed=3),
             scorekit.mala_propose(x, s, get(sig), seed=3))
        with pytest.raises(ValueError, match=r"step_size must be a scalar or have shape"):
            scorekit.mala_propose(put(x), put(s), put(np.ones(3, np.float32)), seed=3)
        scorekit.perturb(put(x), bad, seed=1)
        scorekit.langevin_step(put(x), put(s), bad, seed=1)
        assert len(reads) == 2
        with pytest.raises(ValueError, match=r"sigma must be a scalar or have shape \(B,\) = "
                                             r"\(4,\), got shape \(3,\)"):
            scorekit.perturb(put(x), put(np.ones(3, np.float32)), seed=1)
        with pytest.raises(TypeError, match="sigma has dtype float64"):
            scorekit.perturb(put(x), put(np.ones(4)), seed=1)
        with pytest.raises(ValueError, match="sigma must be > 0"):
            scorekit.perturb(put(x), -1.0, seed=1)  # numbers are checked as always
        errors = []

        def other_thread():
            try:
                scorekit.perturb(put(x), bad, seed=1)
            except ValueError as exc:
                errors.append(exc)
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert len(errors) == 1  # the setting is the calling thread's
        with scorekit.device_value_checks(True), pytest.raises(ValueError, match="sigma must"):
            scorekit.perturb(put(x), bad, seed=1)
        scorekit.perturb(put(x), bad, seed=1)  # off again after the inner block
    with pytest.raises(ValueError, match="sigma must be finite"):
        scorekit.perturb(put(x), bad, seed=1)
    with pytest.raises(TypeError, match="enabled must be a bool"):
        scorekit.device_value_checks(0)
    off = scorekit.device_value_checks(False)  # one instance, nested in itself
    with off:
        with off:
            scorekit.perturb(put(x), bad, seed=1)
        scorekit.perturb(put(x), bad, seed=1)
    with pytest.raises(ValueError, match="sigma must be finite"):
        scorekit.perturb(put(x), bad, seed=1)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_dsm_loss(gpu, reduction, dtype):
    for shape in [(1, 3), (5, 70), (2, 3, 5)]:
        s, z = batch(shape, dtype), batch(shape, dtype, 2)
        sig = np.linspace(0.1, 2.0, shape[0]).astype(dtype)
        for weight in ("sigma2", "none", sig):
            got = scorekit.dsm_loss(put(s), sig, seed=4, counter=2, offset=1, weight=weight,
                                    reduction=reduction)
            want = scorekit.dsm_loss(s, sig, seed=4, counter=2, offset=1, weight=weight,
                                     reduction=reduction)
            _same_loss(got[0], want[0], reduction)
            same(got[1], want[1])
        got = scorekit.dsm_loss(put(s), 0.5, noise=put(z), reduction=reduction, return_grad=False)
        _same_loss(got, scorekit.dsm_loss(s, 0.5, noise=z, reduction=reduction,
                                          return_grad=False), reduction)


def test_device_losses_are_reduced_on_the_device(gpu, dtype):
    s, tr = batch((6, 5), dtype), batch((6,), dtype, 1)
    j = batch((6, 2, 5), dtype, 2)
    def losses(s, j, tr, reduction):
        return [scorekit.dsm_loss(s, 0.5, seed=1, reduction=reduction)[0],
                scorekit.ssm_loss(s, j, seed=1, reduction=reduction)[0],
                scorekit.ism_loss(s, tr, reduction=reduction)[0]]

    for reduction in ("mean", "sum"):
        with scorekit.device_losses():
            got = losses(put(s), put(j), put(tr), reduction)
            with scorekit.device_losses(False):  # floats again inside
                inner = losses(put(s), put(j), put(tr), reduction)
            cpu = losses(s, j, tr, reduction)  # CPU calls: floats in any case
        want = losses(s, j, tr, reduction)
        assert cpu == want and inner == want
        assert all(type(v) is float for v in cpu + inner)
        for g, w in zip(got, want, strict=True):
            assert isinstance(g, HostCudaArray) and g.shape == () and g.dtype == np.float64
            assert float(g.data) == w
    assert gpu.calls.count("reduce_losses") == 6
    assert type(scorekit.dsm_loss(put(s), 0.5, seed=1)[0]) is float  # outside the context
    block = scorekit.device_losses()
    with block, scorekit.device_losses(True):  # one instance nests with another
        got = scorekit.dsm_loss(put(s), 0.5, seed=1, reduction="none")[0]
    assert got.shape == (6,) and got.dtype == dtype  # per-sample losses as always
    same(got, scorekit.dsm_loss(s, 0.5, seed=1, reduction="none")[0])
    with pytest.raises(TypeError, match="enabled"):
        scorekit.device_losses("yes")


def _same_loss(got, want, reduction):
    if reduction == "none":
        same(got, want)
    else:
        assert type(got) is float and got == want


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_ssm_loss(gpu, kind, reduction, dtype):
    for shape, K in [((3, 7), 1), ((2, 9), 3), ((2, 3, 5), 2)]:
        s = batch(shape, dtype)
        j = batch(shape if K == 1 else (shape[0], K) + shape[1:], dtype, 1)
        for vr in (True, False):
            args = dict(seed=6, counter=1, kind=kind, variance_reduction=vr,
                        reduction=reduction, offset=2)
            got = scorekit.ssm_loss(put(s), put(j), **args)
            want = scorekit.ssm_loss(s, j, **args)
            _same_loss(got[0], want[0], reduction)
            same(got[1], want[1])
            same(got[2], want[2])
        _same_loss(scorekit.ssm_loss(put(s), put(j), seed=1, reduction=reduction,
                                     return_grad=False),
                   scorekit.ssm_loss(s, j, seed=1, reduction=reduction, return_grad=False),
                   reduction)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_ism_loss(gpu, reduction, dtype):
    s, tr = batch((4, 6), dtype), batch((4,), dtype, 1)
    got = scorekit.ism_loss(put(s), put(tr), reduction=reduction)
    want = scorekit.ism_loss(s, tr, reduction=reduction)
    _same_loss(got[0], want[0], reduction)
    same(got[1], want[1])
    same(got[2], want[2])


def test_corrector_step(gpu, dtype):
    x, s = batch((5, 9), dtype), batch((5, 9), dtype, 1)
    for per_sample in (False, True):
        for alpha in (0.9, np.linspace(0.5, 1.0, 5), put(np.linspace(0.5, 1.0, 5))):
            got = scorekit.corrector_step(put(x), put(s), snr=0.16, alpha=alpha, seed=2,
                                          counter=5, offset=1, per_sample=per_sample)
            want = scorekit.corrector_step(x, s, snr=0.16, alpha=get(alpha), seed=2, counter=5,
                                           offset=1, per_sample=per_sample)
            for g, w in zip(got, want, strict=True):
                same(g, w)
    xd = put(x)  # in place
    out, _, _ = scorekit.corrector_step(xd, put(s), snr=0.16, seed=2, out=xd)
    assert out is xd
    same(xd, scorekit.corrector_step(x, s, snr=0.16, seed=2)[0])


def test_mala_steps(gpu, dtype):
    x = batch((16, 5), dtype)

    def logp(v):
        return -0.5 * np.sum(np.asarray(v, np.float64) ** 2, axis=1)

    h = np.geomspace(0.01, 2.0, 16).astype(dtype)
    want_p = scorekit.mala_propose(x, -x, h, seed=3, counter=7, offset=4)
    got_p = scorekit.mala_propose(put(x), put(-x), put(h), seed=3, counter=7, offset=4)
    same(got_p, want_p)
    want = scorekit.mala_accept(x, -x, logp(x), want_p, -want_p, logp(want_p), h, seed=3,
                                counter=7, offset=4)
    assert 0 < want.accepted.mean() < 1
    got = scorekit.mala_accept(put(x), put(-x), logp(x), got_p, put(-want_p),
                               put(logp(want_p).astype(np.float32)), h, seed=3, counter=7,
                               offset=4)
    want_f32 = scorekit.mala_accept(x, -x, logp(x), want_p, -want_p,
                                    logp(want_p).astype(np.float32), h, seed=3, counter=7,
                                    offset=4)
    for g, w in zip(got, want_f32, strict=True):
        same(g, w)


def test_predictor_step(gpu, dtype):
    sde = scorekit.VPSDE(N=100)
    x, s = batch((6, 9), dtype), batch((6, 9), dtype, 1)
    t = np.linspace(0.2, 0.9, 6)
    for kind in ("reverse_diffusion", "euler_maruyama", "ancestral"):
        got = scorekit.predictor_step(sde, put(x), put(s), t, kind=kind, seed=4, counter=1)
        want = scorekit.predictor_step(sde, x, s, t, kind=kind, seed=4, counter=1)
        same(got.x, want.x)
        same(got.x_mean, want.x_mean)


def _score(x, level):
    """A Gaussian score -x / (1 + level^2) in the caller's array type."""
    out = -get(x) / (1.0 + get(level)[:, None] ** 2)
    return put(out) if isinstance(x, HostCudaArray) else out


def test_annealed_langevin_runs_on_the_device(gpu, dtype):
    x0 = batch((6, 4), dtype)
    seen = []
    args = dict(n_steps_each=3, step_lr=0.05, seed=5, offset=2)
    got = scorekit.annealed_langevin(_score, put(x0), [1.0, 0.5, 0.1],
                                     callback=lambda i, x: seen.append(type(x)), **args)
    want = scorekit.annealed_langevin(_score, x0, [1.0, 0.5, 0.1], **args)
    same(got, want)
    assert seen == [HostCudaArray] * 9
    assert "affine_step" in gpu.calls


def test_pc_sample_runs_on_the_like_device(gpu, dtype):
    sde = scorekit.VPSDE(N=40)
    args = dict(seed=8, offset=1, dtype=dtype, snr=0.2)
    for predictor in ("reverse_diffusion", "ancestral"):
        got = scorekit.pc_sample(_score, sde, (5, 3), predictor=predictor,
                                 like=put(np.zeros((2, 2), np.int64)[:, 0]), **args)
        want = scorekit.pc_sample(_score, sde, (5, 3), predictor=predictor, **args)
        same(got, want)
    assert {"fill_noise", "langevin_corrector", "affine_step"} <= set(gpu.calls)
    with pytest.raises(TypeError, match="like must be a CUDA array"):
        scorekit.pc_sample(_score, sde, (5, 3), seed=1, like=np.zeros(1))


def test_mala_driver_runs_on_the_device(gpu, dtype):
    x0 = batch((8, 3), dtype)

    def logp(x):
        v = -0.5 * np.sum(get(x).astype(np.float64) ** 2, axis=1)
        return put(v) if isinstance(x, HostCudaArray) else v

    def score(x):
        return -x

    h = np.geomspace(0.05, 3.0, 8).astype(dtype)
    got = scorekit.mala(logp, score, put(x0), h, n_steps=6, seed=2)
    want = scorekit.mala(logp, score, x0, h, n_steps=6, seed=2)
    same(got.x, want.x)
    same(got.acceptance_rate, want.acceptance_rate)
    assert 0 < want.acceptance_rate.mean() < 1


def test_driver_results_are_checked(gpu):
    x0 = put(batch((4, 3), np.float32))
    with pytest.raises(TypeError, match="score_fn must return a CUDA array on the samples' "
                                        "device"):
        scorekit.annealed_langevin(lambda x, s: get(x), x0, [1.0], n_steps_each=1,
                                   step_lr=0.1, seed=1)
    with pytest.raises(ValueError, match=r"score_fn returned shape \(4, 2\), expected \(4, 3\)"):
        scorekit.annealed_langevin(lambda x, s: put(np.zeros((4, 2), np.float32)), x0, [1.0],
                                   n_steps_each=1, step_lr=0.1, seed=1)
    with pytest.raises(ValueError, match=r"log_prob_fn returned shape \(3,\), expected \(4,\)"):
        scorekit.mala(lambda x: np.zeros(3), lambda x: -x, x0, 0.1, n_steps=1, seed=1)


def _operator(D, dtype):
    """A symmetric (D, D) operator and its matvec on (B, ...) or (B, m, ...) arrays of either
    array type."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((D, D))
    A = (A + A.T).astype(dtype)

    def matvec(v):
        flat = get(v).reshape(-1, D)
        res = (flat @ A.T).reshape(get(v).shape).astype(dtype)
        return put(res) if isinstance(v, HostCudaArray) else res
    return A, matvec


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_hutchinson_on_the_device(gpu, kind, dtype):
    _, matvec = _operator(6, dtype)
    like = put(np.zeros(1, np.float32))
    for args in (dict(num_probes=5), dict(num_probes=4, block=3, batched=True),
                 dict(num_probes=3, rtol=0.05, max_probes=40, block=2)):
        got = scorekit.hutchinson(matvec, (4, 6), kind=kind, seed=3, counter=1, dtype=dtype,
                                  like=like, **args)
        want = scorekit.hutchinson(matvec, (4, 6), kind=kind, seed=3, counter=1, dtype=dtype,
                                   **args)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert "probe_rows" in gpu.calls and "trace_moments" in gpu.calls


def test_hutchinson_reads_the_device_only_at_checks(gpu, monkeypatch):
    """Rounds are queued without host reads: a fixed run reads the device twice, at the
    end (first non-finite probes, moments); an adaptive run twice more per check. A
    non-finite product raises the CPU's error, once the run ends."""
    _, matvec = _operator(6, np.float64)
    like = put(np.zeros(1, np.float32))
    reads = []
    host = HostFramework.host
    monkeypatch.setattr(HostFramework, "host", staticmethod(lambda a: reads.append(1) or host(a)))
    scorekit.hutchinson(matvec, (4, 6), num_probes=10, block=2, seed=3, like=like)
    assert len(reads) == 2
    reads.clear()
    r = scorekit.hutchinson(matvec, (4, 6), num_probes=4, block=2, rtol=1e-9, max_probes=8,
                            seed=3, like=like)  # checks after probes 4, 6 and 8
    np.testing.assert_array_equal(r.num_matvecs, [8] * 4)
    assert len(reads) == 2 * 3 + 2
    # sample 0's operator is 0 (every sample 0: stops at the first check); the mask of
    # stopped samples is copied to the device once, not every round after
    def zero_first(v):
        out = get(matvec(v)).copy()
        out[0] = 0
        return put(out)
    gpu.calls.clear()
    r = scorekit.hutchinson(zero_first, (4, 6), num_probes=4, block=2, rtol=1e-9,
                            max_probes=12, seed=3, like=like)
    np.testing.assert_array_equal(r.num_matvecs, [4, 12, 12, 12])
    assert gpu.calls.count("trace_moments") == 6 and gpu.calls.count("upload") == 1

    calls = []

    def nan_matvec(v):  # nan in samples 3 and 2 on calls 2 and 3 (round 1), 0 on 5 (round 2)
        out = get(matvec(v)).copy()
        bad = {2: 3, 3: 2, 5: 0}.get(len(calls))
        if bad is not None:
            out[bad] = np.nan
        calls.append(1)
        return put(out) if isinstance(v, HostCudaArray) else out
    for kw in (dict(), dict(like=like)):
        calls.clear()
        with pytest.raises(ValueError, match=r"non-finite values \(sample 2, probe 3\)"):
            scorekit.hutchinson(nan_matvec, (4, 6), num_probes=8, block=2, seed=3, **kw)
        assert len(calls) == (8 if kw else 4)


def test_diagonal_on_the_device(gpu, dtype):
    _, matvec = _operator(5, dtype)
    like = put(np.zeros(1, np.float32))
    for K, block in ((6, 4), (1, None)):
        got = scorekit.diagonal(matvec, (3, 5), num_probes=K, block=block, seed=2, dtype=dtype,
                                like=like)
        want = scorekit.diagonal(matvec, (3, 5), num_probes=K, block=block, seed=2,
                                 dtype=dtype)
        for g, w in zip(got, want, strict=True):
            same(g, w)


def test_trace_estimators_check_the_device_products(gpu):
    like = put(np.zeros((), np.int32))  # only its framework and device matter
    with pytest.raises(TypeError, match="matvec must return a CUDA array on the probes' device"):
        scorekit.hutchinson(lambda v: get(v), (2, 3), num_probes=2, seed=1, like=like)
    with pytest.raises(ValueError, match=r"matvec returned shape \(2, 4\), expected \(2, 3\)"):
        scorekit.hutchinson(lambda v: put(np.zeros((2, 4))), (2, 3), num_probes=2, seed=1,
                            like=like)
    with pytest.raises(ValueError, match="matvec returned non-finite values"):
        scorekit.hutchinson(lambda v: v * np.nan, (2, 3), num_probes=2, seed=1, like=like)
    with pytest.raises(ValueError, match="matvec returned non-finite values"):
        scorekit.diagonal(lambda v: v * np.inf, (2, 3), num_probes=2, seed=1, like=like)
    with pytest.raises(TypeError, match="like must be a CUDA array"):
        scorekit.diagonal(lambda v: v, (2, 3), num_probes=2, seed=1, like=np.zeros(3))


@pytest.fixture
def dlpack(gpu, monkeypatch):
    monkeypatch.setattr(_gpu, "_bridge_from_dlpack", bridge_from_dlpack)
    return gpu


def _same_dl(got, want):
    assert isinstance(got, DLPackOnlyArray), type(got)
    np.testing.assert_array_equal(got.data, want)
    assert got.data.dtype == np.asarray(want).dtype


def test_dlpack_only_arrays_come_back_in_their_framework(dlpack, dtype):
    x, s = batch((5, 6), dtype), batch((5, 6), dtype, 1)
    xj, sj = DLPackOnlyArray(x.copy()), DLPackOnlyArray(s.copy())
    _same_dl(scorekit.perturb(xj, 0.5, seed=3, offset=1), scorekit.perturb(x, 0.5, seed=3,
                                                                           offset=1))
    got = scorekit.noisy_affine_step(xj, sj, 1.0, 0.1, 0.2, seed=4)
    want = scorekit.noisy_affine_step(x, s, 1.0, 0.1, 0.2, seed=4)
    assert type(got) is scorekit.StepResult
    _same_dl(got.x, want.x)
    _same_dl(got.x_mean, want.x_mean)
    loss, grad = scorekit.dsm_loss(sj, 0.7, seed=2)
    want_loss, want_grad = scorekit.dsm_loss(s, 0.7, seed=2)
    assert loss == want_loss
    _same_dl(grad, want_grad)
    _same_dl(scorekit.mala_propose(xj, sj, 0.1, seed=1), scorekit.mala_propose(x, s, 0.1,
                                                                              seed=1))
    logp = -0.5 * np.sum(x.astype(np.float64) ** 2, axis=1)
    got = scorekit.mala_accept(xj, sj, logp, sj, xj, logp[::-1].copy(), 0.3, seed=1)
    want = scorekit.mala_accept(x, s, logp, s, x, logp[::-1].copy(), 0.3, seed=1)
    for g, w in zip(got, want, strict=True):
        _same_dl(g, w)
    # one framework per call
    with pytest.raises(TypeError, match="sigma and the call's other arrays come from different"):
        scorekit.perturb(put(x), DLPackOnlyArray(np.full(5, 0.5, dtype)), seed=3)
    with pytest.raises(TypeError, match="score and the call's other arrays come from different"):
        scorekit.langevin_step(xj, put(s), 0.1, seed=3)


def test_dlpack_calls_wait_for_their_kernels_and_keep_float64(dlpack, monkeypatch):
    x = batch((4, 6), np.float32)
    xj = DLPackOnlyArray(x.copy())
    before = HostFramework.syncs
    scorekit.perturb(xj, 0.5, seed=1)
    assert HostFramework.syncs == before + 1
    with pytest.raises(ValueError, match="sigma must be > 0"):
        scorekit.perturb(xj, -1.0, seed=1)  # fails after bridging: still waits
    assert HostFramework.syncs == before + 2
    monkeypatch.setattr(DLPackOnlyNamespace, "x64", False)
    logp = -0.5 * np.sum(x.astype(np.float64) ** 2, axis=1)
    got = scorekit.mala_accept(xj, xj, logp, xj, xj, logp, 0.1, seed=2)
    want = scorekit.mala_accept(x, x, logp, x, x, logp, 0.1, seed=2)
    assert isinstance(got.x, DLPackOnlyArray) and isinstance(got.accepted, DLPackOnlyArray)
    assert type(got.logp) is np.ndarray  # float64 the framework would narrow: NumPy instead
    np.testing.assert_array_equal(got.logp, want.logp)


def test_dlpack_only_arrays_are_refused_where_they_cannot_serve(dlpack, monkeypatch):
    xj = DLPackOnlyArray(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="out is a CUDA array of type DLPackOnlyArray: "
                                         "scorekit writes outputs only into PyTorch"):
        scorekit.perturb(put(np.zeros((3, 4), np.float32)), 0.5, seed=1, out=xj)
    with pytest.raises(TypeError, match="x is a CUDA array of type DLPackOnlyArray: the drivers"):
        scorekit.annealed_langevin(lambda x, s: x, xj, [1.0], n_steps_each=1, step_lr=0.1,
                                   seed=1)
    with pytest.raises(TypeError, match="like is a CUDA array of type DLPackOnlyArray"):
        scorekit.hutchinson(lambda v: v, (3, 4), num_probes=2, seed=1, like=xj)
    monkeypatch.setattr(_gpu, "_bridge_from_dlpack", lambda: None)
    with pytest.raises(TypeError, match="through DLPack with PyTorch .* or CuPy.*install one"):
        scorekit.perturb(xj, 0.5, seed=1)
    assert dlpack.calls == []


def test_the_gpu_tests_pass_against_the_stand_in():
    """tests/test_cuda.py's CuPy half, run with the stand-in backend and a stand-in
    ``cupy`` (tests/cuda_standin_plugin.py): the GPU tests' own code and expectations
    hold before a GPU ever runs them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root / "tests")] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ
                                 else [])),
        CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")  # only stand-in CUDA arrays there
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "cuda_standin_plugin", str(root / "tests/test_cuda.py")],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 200, summary


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_divergence_on_the_device(gpu, kind, dtype, monkeypatch):
    x = batch((4, 3, 5), dtype)
    d = np.linspace(-1.0, 2.0, 15).astype(dtype).reshape(3, 5)

    def fn(y):  # elementwise: the same bits on either side
        out = get(y) * d + get(y) ** 3
        return put(out) if isinstance(y, HostCudaArray) else out

    for args in (dict(num_probes=3, seed=5, counter=2, offset=1),
                 dict(num_probes=1, seed=5, step=np.full(4, 1e-2, dtype)),
                 dict(num_probes=2, seed=5, step=put(np.full(4, 1e-2, dtype))),
                 dict(method="exact")):
        got = scorekit.divergence(fn, put(x), kind=kind, **args)
        want = scorekit.divergence(fn, x, kind=kind, **{k: get(v) for k, v in args.items()})
        assert type(got) is np.ndarray and got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="fn must return a CUDA array on the samples' device"):
        scorekit.divergence(lambda y: get(y), put(x), seed=1)
    monkeypatch.setattr(_gpu, "_bridge_from_dlpack", bridge_from_dlpack)
    with pytest.raises(TypeError, match="x is a CUDA array of type DLPackOnlyArray"):
        scorekit.divergence(fn, DLPackOnlyArray(x), seed=1)


def test_gaussian_mixture_on_the_device(gpu, dtype):
    gm = scorekit.GaussianMixture([[-2.0, 0.0, 1.0], [1.5, 1.0, -1.0]], [0.5, 1.2], [0.3, 0.7])
    x = batch((6, 3), dtype)
    for sigma in (0.0, 0.4, np.linspace(0.1, 1.0, 6), put(np.linspace(0.1, 1.0, 6))):
        got = gm.evaluate(put(x), sigma)
        want = gm.evaluate(x, get(sigma))
        for g, w in zip(got, want, strict=True):
            same(g, w)  # the stand-in runs the CPU's exp and log: the same bits
    same(gm.score(put(x), 0.2), gm.score(x, 0.2))
    same(gm.log_prob(put(x)), gm.log_prob(x))
    assert len(gm._on_devices) == 1  # the parameters went to the device once
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\) = \(B, 3\)"):
        gm.score(put(np.zeros((4, 2), dtype)))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gm.score(put(x), put(-np.ones(6)))


def test_dlpack_only_arrays_are_refused_by_the_mixture(dlpack):
    gm = scorekit.GaussianMixture([[0.0, 1.0]], 1.0)
    with pytest.raises(TypeError, match="x is a CUDA array of type DLPackOnlyArray"):
        gm.score(DLPackOnlyArray(np.zeros((3, 2))))
    assert dlpack.calls == []
