"""The CUDA backend against the CPU: the same noise bits, the same results.

Runs only where scorekit was built with CUDA and a GPU is present
(``scorekit.gpu_available()``), over PyTorch CUDA tensors and CuPy arrays
(each skipped when its package is missing). Elementwise kernels must match
the CPU bit for bit (both sides use the same functors, without fused
multiply-add), and so must every reduction (the losses of dsm_loss, ssm_loss
and ism_loss, the corrector's step sizes, MALA's decisions): both backends add
in the LaneSum8 order.
"""

import os
import warnings

import numpy as np
import pytest

import scorekit

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not scorekit.gpu_available(), reason="needs a CUDA build and a GPU"),
]

SIZES = [1, 3, 4, 5, 255, 256, 257, 4097, 100_003]
OFFSETS = [0, 1, 3, 2**32 * 4 - 5]


class Torch:
    def __init__(self):
        self.torch = pytest.importorskip("torch")
        if not self.torch.cuda.is_available():
            pytest.skip("PyTorch without CUDA")

    def put(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).cuda()

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=getattr(self.torch, np.dtype(dtype).name),
                                device="cuda")

    def get(self, a):
        return a.cpu().numpy()

    def no_sync(self):
        """PyTorch raises on an operation that waits for the GPU within this block."""
        import contextlib
        torch = self.torch

        def set_mode(mode):
            # PyTorch warns that the mode is a prototype; the suite turns warnings into
            # errors, which would leave the mode set for the worker's later tests
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Synchronization debug mode", UserWarning)
                torch.cuda.set_sync_debug_mode(mode)

        @contextlib.contextmanager
        def block():
            mode = torch.cuda.get_sync_debug_mode()
            try:
                set_mode("error")
                yield
            finally:
                set_mode(mode)
        return block()


class CuPy:
    def __init__(self):
        self.cp = pytest.importorskip("cupy")

    def put(self, a):
        return self.cp.asarray(np.ascontiguousarray(a))

    def empty(self, shape, dtype):
        return self.cp.empty(shape, dtype=dtype)

    def get(self, a):
        return self.cp.asnumpy(a)

    def no_sync(self):
        import contextlib
        return contextlib.nullcontext()


@pytest.fixture(params=["torch", "cupy"])
def fw(request):
    return Torch() if request.param == "torch" else CuPy()


@pytest.mark.parametrize("kind", ["normal", "uniform", "rademacher"])
@pytest.mark.parametrize("n", SIZES)
def test_noise_bits(fw, kind, n, dtype):
    for offset in OFFSETS:
        out = fw.empty((n,), dtype)
        got = getattr(scorekit, kind)(n, seed=2**63 + 5, counter=17, offset=offset, out=out)
        want = getattr(scorekit, kind)(n, seed=2**63 + 5, counter=17, offset=offset, dtype=dtype)
        np.testing.assert_array_equal(fw.get(got), want)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
@pytest.mark.parametrize("shape,num_probes", [((3, 5), None), ((2, 4097), 3), ((4, 2, 3), 2)])
def test_probe_bits(fw, kind, shape, num_probes, dtype):
    full = shape if num_probes is None else (shape[0], num_probes) + shape[1:]
    for offset in (0, 5):
        got = scorekit.probes(shape, kind=kind, seed=9, counter=4, num_probes=num_probes,
                              offset=offset, out=fw.empty(full, dtype))
        want = scorekit.probes(shape, kind=kind, seed=9, counter=4, num_probes=num_probes,
                               offset=offset, dtype=dtype)
        np.testing.assert_array_equal(fw.get(got), want)


def batch(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (3, 4097), (2, 3, 5, 7)])
def test_perturb_and_langevin_bits(fw, shape, dtype):
    x, s = batch(shape, dtype), batch(shape, dtype, 1)
    sig = np.linspace(0.1, 2.0, shape[0]).astype(dtype)
    def host(v):
        return v if isinstance(v, (float, np.ndarray, type(None))) else fw.get(v)

    for sigma, scale in [(0.7, None), (sig, sig[::-1].copy()), (fw.put(sig), 0.9)]:
        got = scorekit.perturb(fw.put(x), sigma, seed=3, counter=9, offset=2, scale=scale)
        want = scorekit.perturb(x, host(sigma), seed=3, counter=9, offset=2, scale=host(scale))
        np.testing.assert_array_equal(fw.get(got), want)
    got = scorekit.langevin_step(fw.put(x), fw.put(s), sig, seed=3, counter=9, offset=2)
    np.testing.assert_array_equal(fw.get(got), scorekit.langevin_step(x, s, sig, seed=3,
                                                                      counter=9, offset=2))
    xd = fw.put(x)  # in place
    scorekit.perturb(xd, 0.5, seed=1, out=xd)
    np.testing.assert_array_equal(fw.get(xd), scorekit.perturb(x, 0.5, seed=1))


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (3, 4097), (2, 3, 5, 7)])
def test_noisy_affine_step_bits(fw, shape, dtype):
    x, s = batch(shape, dtype), batch(shape, dtype, 1)
    a = np.linspace(0.5, 1.5, shape[0]).astype(dtype)
    got = scorekit.noisy_affine_step(fw.put(x), fw.put(s), a, -0.25, fw.put(a[::-1].copy()),
                                     seed=5, counter=3, offset=2)
    want = scorekit.noisy_affine_step(x, s, a, -0.25, a[::-1].copy(), seed=5, counter=3, offset=2)
    np.testing.assert_array_equal(fw.get(got.x), want.x)
    np.testing.assert_array_equal(fw.get(got.x_mean), want.x_mean)


@pytest.mark.parametrize("shape", [(1, 3), (5, 7), (3, 64), (3, 65), (3, 3 * 4096 + 5),
                                   (2, 3, 5, 7)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_dsm_loss(fw, shape, reduction, dtype):
    s = batch(shape, dtype)
    sig = np.linspace(0.1, 2.0, shape[0]).astype(dtype)
    for weight in ("sigma2", "none", sig):
        got_loss, got_grad = scorekit.dsm_loss(fw.put(s), sig, seed=4, counter=2, offset=1,
                                               weight=weight, reduction=reduction)
        want_loss, want_grad = scorekit.dsm_loss(s, sig, seed=4, counter=2, offset=1,
                                                 weight=weight, reduction=reduction)
        np.testing.assert_array_equal(fw.get(got_grad), want_grad)
        got = fw.get(got_loss) if reduction == "none" else got_loss
        np.testing.assert_array_equal(got, want_loss)
    z = batch(shape, dtype, 2)
    got = scorekit.dsm_loss(fw.put(s), 0.5, noise=fw.put(z), reduction="sum", return_grad=False)
    assert got == scorekit.dsm_loss(s, 0.5, noise=z, reduction="sum", return_grad=False)


@pytest.mark.parametrize("threads", [8, 32])
def test_row_reductions_with_each_chunk_width(fw, threads, dtype):
    """The row reductions with 8 and with 32 threads a chunk (forced: what a call's size
    would choose on a large card is checked under the emulation): dsm_loss (one sum),
    ssm_loss (two sums: probes against jvp and score, sphere probes' norms; one sum and
    the score's squares with variance reduction, rows of whole 16-byte words), ism_loss
    (odd and whole-word rows), mala_accept's squared distances and hutchinson's
    products, over several blocks (123 chunks: 4 blocks of 32, 16 of 8), the CPU's
    bits in every case.
    benchmarks/gpu_session.sh also runs the other reductions' tests with eight threads
    a chunk."""
    from scorekit import _gpu
    s, x = batch((41, 3 * 4096 + 5), dtype), batch((41, 3 * 4096 + 5), dtype, 1)
    j = batch((5, 2, 9001), dtype, 2)
    w = batch((21, 3, 2 * 4096 + 4), dtype, 3)  # D a multiple of 4: 16-byte words
    sig = np.linspace(0.1, 2.0, 41).astype(dtype)
    lx = -0.5 * np.sum(s.astype(np.float64) ** 2, axis=1)  # MALA's log-densities
    lp = -0.5 * np.sum(x.astype(np.float64) ** 2, axis=1) + np.linspace(-1500.0, 1500.0, 41)
    d = np.linspace(-1.0, 2.0, 9001).astype(dtype)
    dd, like = fw.put(d), fw.put(np.zeros(1, np.float32))
    try:
        _gpu._cuda.set_chunk_threads(threads)
        got = [scorekit.dsm_loss(fw.put(s), sig, seed=4, counter=2, reduction="none"),
               scorekit.dsm_loss(fw.put(s), 0.5, noise=fw.put(x), reduction="none"),
               scorekit.ssm_loss(fw.put(j[:, 0]), fw.put(j), seed=6, kind="sphere",
                                 variance_reduction=False, reduction="none"),
               scorekit.ssm_loss(fw.put(w[:, 0]), fw.put(w), seed=7, kind="rademacher",
                                 reduction="none"),
               scorekit.ism_loss(fw.put(s), fw.put(sig), reduction="none"),
               scorekit.ism_loss(fw.put(w[:, 1]), fw.put(sig[:21]), reduction="none"),
               scorekit.mala_accept(fw.put(s), fw.put(-s), lx, fw.put(x), fw.put(-x), lp, 0.3,
                                    seed=5)]
        got_tr = scorekit.hutchinson(lambda v: v * dd, (5, 9001), num_probes=3, seed=3,
                                     dtype=dtype, like=like)
    finally:
        _gpu._cuda.set_chunk_threads(0)
    want = [scorekit.dsm_loss(s, sig, seed=4, counter=2, reduction="none"),
            scorekit.dsm_loss(s, 0.5, noise=x, reduction="none"),
            scorekit.ssm_loss(j[:, 0], j, seed=6, kind="sphere", variance_reduction=False,
                              reduction="none"),
            scorekit.ssm_loss(w[:, 0], w, seed=7, kind="rademacher", reduction="none"),
            scorekit.ism_loss(s, sig, reduction="none"),
            scorekit.ism_loss(w[:, 1], sig[:21], reduction="none"),
            scorekit.mala_accept(s, -s, lx, x, -x, lp, 0.3, seed=5)]
    assert 0 < want[-1].accepted.mean() < 1
    for g, e in zip(got, want, strict=True):
        for a, b in zip(g, e, strict=True):
            np.testing.assert_array_equal(fw.get(a), b)
    want_tr = scorekit.hutchinson(lambda v: v * d, (5, 9001), num_probes=3, seed=3, dtype=dtype)
    for g, w in zip(got_tr, want_tr, strict=True):
        np.testing.assert_array_equal(g, w)


def test_device_value_checks_off_gives_the_same_bits(fw, dtype):
    """CUDA per-sample parameters not read back for their checks: the same results, and
    values the checks refuse go through (they only enter the arithmetic)."""
    s, x = batch((5, 4097), dtype), batch((5, 4097), dtype, 1)
    sig = np.linspace(0.1, 2.0, 5).astype(dtype)
    want_loss, want_grad = scorekit.dsm_loss(s, sig, seed=4, counter=2, reduction="none")
    want_x = scorekit.perturb(x, sig, seed=3, counter=1)
    args = [fw.put(a) for a in (s, sig, x, -sig)]
    with scorekit.device_value_checks(False), fw.no_sync():
        loss, grad = scorekit.dsm_loss(args[0], args[1], seed=4, counter=2, reduction="none")
        got_x = scorekit.perturb(args[2], args[1], seed=3, counter=1)
        scorekit.perturb(args[2], args[3], seed=3, counter=1)
        got_p = scorekit.mala_propose(args[2], args[0], args[1], seed=5)
    np.testing.assert_array_equal(fw.get(loss), want_loss)
    np.testing.assert_array_equal(fw.get(grad), want_grad)
    np.testing.assert_array_equal(fw.get(got_x), want_x)
    np.testing.assert_array_equal(fw.get(got_p), scorekit.mala_propose(x, s, sig, seed=5))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        scorekit.perturb(fw.put(x), fw.put(-sig), seed=3, counter=1)
    # a 0-d CUDA parameter: broadcast on the device, cast as a number is
    h = fw.put(np.array([0.3]))[0]  # 0-d, float64
    assert h.shape == ()
    with scorekit.device_value_checks(False), fw.no_sync():
        got_x = scorekit.perturb(args[2], h, seed=3, counter=1, scale=h)
        got_p = scorekit.mala_propose(args[2], args[0], h, seed=5)
    np.testing.assert_array_equal(fw.get(got_x), scorekit.perturb(x, 0.3, seed=3, counter=1,
                                                                  scale=0.3))
    np.testing.assert_array_equal(fw.get(got_p), scorekit.mala_propose(x, s, 0.3, seed=5))


def test_device_losses_stay_on_the_device(fw, dtype):
    """Within device_losses(), "mean" and "sum" losses are 0-d float64 arrays of the
    caller's framework on the device, with the CPU's floats' bits, and the calls wait for
    nothing (PyTorch's sync debug mode; with device_value_checks(False) for sigma)."""
    s, tr = batch((5, 4097), dtype), batch((5,), dtype, 1)
    j = batch((5, 2, 4097), dtype, 2)
    sig = np.linspace(0.1, 2.0, 5).astype(dtype)
    sd, trd, jd, sigd = (fw.put(a) for a in (s, tr, j, sig))
    for reduction in ("mean", "sum"):
        with scorekit.device_losses(), scorekit.device_value_checks(False), fw.no_sync():
            got = [scorekit.dsm_loss(sd, sigd, seed=4, counter=2, reduction=reduction)[0],
                   scorekit.ssm_loss(sd, jd, seed=4, reduction=reduction)[0],
                   scorekit.ism_loss(sd, trd, reduction=reduction)[0]]
        want = [scorekit.dsm_loss(s, sig, seed=4, counter=2, reduction=reduction)[0],
                scorekit.ssm_loss(s, j, seed=4, reduction=reduction)[0],
                scorekit.ism_loss(s, tr, reduction=reduction)[0]]
        for g, w in zip(got, want, strict=True):
            assert type(g) is type(sd) and g.shape == ()
            h = fw.get(g)
            assert h.dtype == np.float64 and float(h) == w


def _same_loss(fw, got, want, reduction):
    np.testing.assert_array_equal(fw.get(got) if reduction == "none" else got, want)


@pytest.mark.parametrize("shape,K", [((1, 3), 1), ((5, 7), 2), ((3, 65), 3), ((2, 4097), 2),
                                     ((2, 3, 5, 7), 1), ((4, 64), 3), ((3, 4100), 2)])
@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_ssm_loss(fw, shape, K, kind, dtype):
    s = batch(shape, dtype)
    j = batch(shape if K == 1 else (shape[0], K) + shape[1:], dtype, 1)
    for vr in (True, False):
        for reduction in ("none", "mean"):
            args = dict(seed=6, counter=1, kind=kind, variance_reduction=vr, reduction=reduction,
                        offset=2)
            got = scorekit.ssm_loss(fw.put(s), fw.put(j), **args)
            want = scorekit.ssm_loss(s, j, **args)
            _same_loss(fw, got[0], want[0], reduction)
            np.testing.assert_array_equal(fw.get(got[1]), want[1])
            np.testing.assert_array_equal(fw.get(got[2]), want[2])


def test_ssm_loss_rows_of_no_elements_with_many_probes(fw, dtype):
    """Rows of no elements and 2**40 probes (jvp holds no data): one probe's work and
    workspace, the CPU's losses."""
    s, j = np.zeros((3, 0), dtype), np.zeros((3, 2**40, 0), dtype)
    for vr in (True, False):
        args = dict(seed=6, variance_reduction=vr, reduction="none")
        got = scorekit.ssm_loss(fw.put(s), fw.put(j), **args)
        want = scorekit.ssm_loss(s, j, **args)
        np.testing.assert_array_equal(fw.get(got[0]), want[0])
        assert tuple(got[2].shape) == j.shape


def _off_alignment(fw, a):
    """a on the device one element past the start of its allocation: a view that is
    not 16-byte aligned."""
    flat = fw.put(np.concatenate([np.zeros(1, a.dtype), a.ravel()]))
    return flat[1:].reshape(a.shape)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_ssm_loss_over_arrays_off_alignment(fw, kind, dtype):
    """ssm_loss over views one element off 16-byte alignment (score alone, jvp alone,
    both), rows of whole 16-byte words that would take the vector paths if aligned:
    scalar accesses where an array needs them (a vector access there would fault), the
    CPU's bits."""
    s, j = batch((3, 2 * 4096 + 8), dtype), batch((3, 2, 2 * 4096 + 8), dtype, 1)
    for moved in ("score", "jvp", "both"):
        sd = _off_alignment(fw, s) if moved != "jvp" else fw.put(s)
        jd = _off_alignment(fw, j) if moved != "score" else fw.put(j)
        for vr in (True, False):
            args = dict(seed=5, kind=kind, variance_reduction=vr, reduction="none")
            got, want = scorekit.ssm_loss(sd, jd, **args), scorekit.ssm_loss(s, j, **args)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(fw.get(a), b)


def test_ism_and_dsm_loss_over_arrays_off_alignment(fw, dtype):
    """ism_loss and dsm_loss (regenerated and stored noise) over views one element off
    16-byte alignment (dsm: score alone, stored noise alone, both), as above."""
    s, x = batch((3, 2 * 4096 + 8), dtype), batch((3, 2 * 4096 + 8), dtype, 3)
    tr = batch((3,), dtype, 2)
    sig = np.linspace(0.5, 1.5, 3).astype(dtype)
    off_s, off_x, on_s, on_x = (_off_alignment(fw, s), _off_alignment(fw, x), fw.put(s),
                                fw.put(x))
    got = [scorekit.ism_loss(off_s, fw.put(tr), reduction="none"),
           scorekit.dsm_loss(off_s, sig, seed=4, reduction="none"),
           scorekit.dsm_loss(off_s, 0.5, noise=on_x, reduction="none"),
           scorekit.dsm_loss(on_s, 0.5, noise=off_x, reduction="none"),
           scorekit.dsm_loss(off_s, 0.5, noise=off_x, reduction="none")]
    want = [scorekit.ism_loss(s, tr, reduction="none"),
            scorekit.dsm_loss(s, sig, seed=4, reduction="none"),
            *[scorekit.dsm_loss(s, 0.5, noise=x, reduction="none")] * 3]
    for g, e in zip(got, want, strict=True):
        for a, b in zip(g, e, strict=True):
            np.testing.assert_array_equal(fw.get(a), b)


@pytest.mark.parametrize("shape", [(1, 3), (4, 64), (3, 65), (2, 9001), (2, 3, 5, 7),
                                   (3, 4100)])
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_ism_loss(fw, shape, reduction, dtype):
    s, tr = batch(shape, dtype), batch((shape[0],), dtype, 1)
    got = scorekit.ism_loss(fw.put(s), fw.put(tr), reduction=reduction)
    want = scorekit.ism_loss(s, tr, reduction=reduction)
    _same_loss(fw, got[0], want[0], reduction)
    np.testing.assert_array_equal(fw.get(got[1]), want[1])
    np.testing.assert_array_equal(fw.get(got[2]), want[2])


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (3, 65), (2, 3 * 4096 + 5), (2, 3, 5, 7)])
def test_corrector_step_bits(fw, shape, dtype):
    x, s = batch(shape, dtype), batch(shape, dtype, 1)
    alpha = np.linspace(0.5, 1.0, shape[0])
    for per_sample in (False, True):
        for a in (0.9, alpha):
            got = scorekit.corrector_step(fw.put(x), fw.put(s), snr=0.16, alpha=a, seed=2,
                                          counter=5, offset=1, per_sample=per_sample)
            want = scorekit.corrector_step(x, s, snr=0.16, alpha=a, seed=2, counter=5, offset=1,
                                           per_sample=per_sample)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(fw.get(g), w)


@pytest.mark.parametrize("shape", [(64, 1), (32, 7), (16, 65), (8, 5000), (8, 3, 5)])
def test_mala_bits(fw, shape, dtype):
    """A MALA step on a standard normal target: proposal, decisions and the new state
    (step sizes from 0.01 to 2: every shape has chains that accept and chains that reject)."""
    x = batch(shape, dtype)
    axes = tuple(range(1, x.ndim))

    def logp(v):
        return -0.5 * np.sum(np.asarray(v, np.float64) ** 2, axis=axes)

    h = np.geomspace(0.01, 2.0, shape[0]).astype(dtype)
    want_p = scorekit.mala_propose(x, -x, h, seed=3, counter=7, offset=4)
    got_p = scorekit.mala_propose(fw.put(x), fw.put(-x), h, seed=3, counter=7, offset=4)
    np.testing.assert_array_equal(fw.get(got_p), want_p)
    want = scorekit.mala_accept(x, -x, logp(x), want_p, -want_p, logp(want_p), h, seed=3,
                                counter=7, offset=4)
    got = scorekit.mala_accept(fw.put(x), fw.put(-x), logp(x), got_p, fw.put(-want_p),
                               fw.put(logp(want_p)), h, seed=3, counter=7, offset=4)
    assert 0 < want.accepted.mean() < 1
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(fw.get(g), w)


def test_mala_accept_sums_each_norm_chunk_by_chunk(fw, dtype):
    """A MALA test that the order of the sums decides (conftest's mala_order_case): the
    GPU accepts, as the CPU, where one LaneSum8 over the row would reject."""
    from conftest import mala_order_case
    (x, sx, lx, p, sp, lp, h), kw = mala_order_case(dtype)
    want = scorekit.mala_accept(x, sx, lx, p, sp, lp, h, **kw)
    got = scorekit.mala_accept(fw.put(x), fw.put(sx), lx, fw.put(p), fw.put(sp), lp, h, **kw)
    assert want.accepted[0]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(fw.get(g), w)


def test_mala_accept_over_arrays_off_alignment(fw, dtype):
    """mala_accept with the current state and the proposal's score as views one element
    off 16-byte alignment (rows of whole 16-byte words): the CPU's decisions and state."""
    x, p = batch((8, 5000), dtype), batch((8, 5000), dtype, 1) * 0.05
    p = (x + p).astype(dtype)
    h = np.geomspace(0.01, 2.0, 8).astype(dtype)
    lx, lp = (-0.5 * np.sum(v.astype(np.float64) ** 2, 1) for v in (x, p))
    want = scorekit.mala_accept(x, -x, lx, p, -p, lp, h, seed=3, counter=7)
    got = scorekit.mala_accept(_off_alignment(fw, x), fw.put(-x), lx, fw.put(p),
                               _off_alignment(fw, -p), fw.put(lp), h, seed=3, counter=7)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(fw.get(g), w)


def test_predictor_step_bits(fw, dtype):
    sde = scorekit.VPSDE(N=100)
    x, s = batch((6, 9), dtype), batch((6, 9), dtype, 1)
    t = np.linspace(0.2, 0.9, 6)
    for kind in ("reverse_diffusion", "euler_maruyama", "ancestral"):
        got = scorekit.predictor_step(sde, fw.put(x), fw.put(s), t, kind=kind, seed=4, counter=1)
        want = scorekit.predictor_step(sde, x, s, t, kind=kind, seed=4, counter=1)
        np.testing.assert_array_equal(fw.get(got.x), want.x)
        np.testing.assert_array_equal(fw.get(got.x_mean), want.x_mean)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_trace_estimators_bits(fw, kind, dtype):
    """hutchinson and diagonal with like=: probes, samples and moments on the GPU (a
    diagonal operator, whose products are the same bits in every framework)."""
    d = np.linspace(-1.0, 2.0, 4097).astype(dtype)
    dd = fw.put(d)
    like = fw.put(np.zeros(1, np.float32))
    for args in (dict(num_probes=5), dict(num_probes=4, block=3, batched=True),
                 dict(num_probes=3, rtol=0.05, max_probes=40, block=2)):
        got = scorekit.hutchinson(lambda v: v * dd, (3, 4097), kind=kind, seed=3, counter=1,
                                  dtype=dtype, like=like, **args)
        want = scorekit.hutchinson(lambda v: v * d, (3, 4097), kind=kind, seed=3, counter=1,
                                   dtype=dtype, **args)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    got = scorekit.diagonal(lambda v: v * dd, (3, 4097), num_probes=6, block=4, kind=kind,
                            seed=2, dtype=dtype, like=like)
    want = scorekit.diagonal(lambda v: v * d, (3, 4097), num_probes=6, block=4, kind=kind,
                             seed=2, dtype=dtype)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(fw.get(g), w)


def test_trace_non_finite_products(fw):
    """Non-finite products found on the GPU raise the CPU's errors, naming the sample
    and probe."""
    w = np.ones((3, 4097))
    w[1, 7] = np.inf
    ww = fw.put(w)
    like = fw.put(np.zeros(1, np.float32))
    for kw, mv in ((dict(), lambda v: v * w), (dict(like=like), lambda v: v * ww)):
        with pytest.raises(ValueError, match=r"matvec returned non-finite values "
                                             r"\(sample 1, probe 0\)"):
            scorekit.hutchinson(mv, (3, 4097), num_probes=4, block=2, seed=3, **kw)
        with pytest.raises(ValueError, match=r"matvec returned non-finite values \(sample 1, "
                                             r"probe 0\)"):
            scorekit.hutchinson(mv, (3, 4097), num_probes=4, block=2, rtol=1e-3, seed=3, **kw)
        with pytest.raises(ValueError, match="matvec returned non-finite values"):
            scorekit.diagonal(mv, (3, 4097), num_probes=4, block=2, seed=3, **kw)
    with pytest.raises(ValueError, match=r"fn returned non-finite values \(sample 1, probe 0\)"), \
            np.errstate(invalid="ignore"):  # inf - inf (for arrays computed by NumPy)
        scorekit.divergence(lambda y: y * ww, fw.put(np.ones((3, 4097))), seed=3)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_divergence_bits(fw, kind, dtype):
    """divergence of an elementwise function (the same bits in every framework) on the GPU."""
    x = batch((4, 3, 5), dtype)
    d = np.linspace(-1.0, 2.0, 15).astype(dtype).reshape(3, 5)
    dd = fw.put(d)

    def fn(y):
        return y * (d if isinstance(y, np.ndarray) else dd) + y * y * y

    for args in (dict(num_probes=3, seed=5, counter=2, offset=1), dict(method="exact")):
        got = scorekit.divergence(fn, fw.put(x), kind=kind, **args)
        np.testing.assert_array_equal(got, scorekit.divergence(fn, x, kind=kind, **args))


def test_gaussian_mixture(fw, dtype):
    """The mixture on the GPU: the CPU's arithmetic order with the device's exp / log,
    so within a few units in the last place of the CPU's results."""
    gm = scorekit.GaussianMixture([[-2.0, 0.0, 1.0], [1.5, 1.0, -1.0]], [0.5, 1.2], [0.3, 0.7])
    x = batch((64, 3), dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for sigma in (0.0, 0.4, np.linspace(0.1, 1.0, 64)):
        got = gm.evaluate(fw.put(x), sigma)
        want = gm.evaluate(x, sigma)
        np.testing.assert_allclose(fw.get(got[0]), want[0], rtol=1e-12)
        np.testing.assert_allclose(fw.get(got[1]), want[1], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(fw.get(got[2]), want[2], rtol=1e-10, atol=1e-12)


def test_samplers_bits(fw, dtype):
    """annealed_langevin, pc_sample (like=) and mala on the GPU against the CPU (the
    acceptance rates too: k / n steps, the CPU's quotient)."""
    def score(x, level):  # float64 arithmetic on either side, cast to x's dtype by the driver
        return -x / (1.0 + level[:, None] ** 2)

    x0 = batch((6, 5), dtype)
    args = dict(n_steps_each=3, step_lr=0.05, seed=5, offset=2)
    got = scorekit.annealed_langevin(score, fw.put(x0), [1.0, 0.5], **args)
    np.testing.assert_array_equal(fw.get(got), scorekit.annealed_langevin(score, x0, [1.0, 0.5],
                                                                         **args))
    sde = scorekit.VPSDE(N=40)
    got = scorekit.pc_sample(score, sde, (5, 3), seed=8, dtype=dtype,
                             like=fw.put(np.zeros(1, np.float32)))
    np.testing.assert_array_equal(fw.get(got), scorekit.pc_sample(score, sde, (5, 3), seed=8,
                                                                  dtype=dtype))

    def logp(x):  # float64 on either side
        x64 = x.double() if hasattr(x, "double") else x.astype(np.float64)
        return -0.5 * (x64 * x64).sum(1)

    h = np.geomspace(0.05, 3.0, 8).astype(dtype)
    x0 = batch((8, 3), dtype)
    got = scorekit.mala(logp, lambda x: -x, fw.put(x0), h, n_steps=7, seed=2)
    want = scorekit.mala(logp, lambda x: -x, x0, h, n_steps=7, seed=2)
    np.testing.assert_array_equal(fw.get(got.x), want.x)
    np.testing.assert_array_equal(fw.get(got.acceptance_rate), want.acceptance_rate)
    assert 0 < want.acceptance_rate.mean() < 1


def test_torch_training_step_with_cuda_sigma_unchecked_does_not_wait(dtype):
    """The training step of device_value_checks' docstring: scorekit.torch's dsm_loss on
    a CUDA score with a (B,) CUDA sigma, forward and backward, with nothing that waits
    for the GPU through PyTorch (its sync debug mode raises on copies to the host and
    synchronisations; a wait inside scorekit's own CUDA code would not show here), and
    the CPU's gradient."""
    fw = Torch()
    t = fw.torch
    import scorekit.torch as st
    s_cpu = t.from_numpy(batch((6, 70), dtype, 1)).requires_grad_()
    s_gpu = s_cpu.detach().cuda().requires_grad_()
    sigma = t.from_numpy(np.linspace(0.2, 1.5, 6).astype(dtype))
    sigma_gpu = sigma.cuda()
    st.dsm_loss(s_cpu * 2, sigma, seed=3, counter=1).backward()
    with scorekit.device_value_checks(False), fw.no_sync():
        loss = st.dsm_loss(s_gpu * 2, sigma_gpu, seed=3, counter=1)
        loss.backward()
    np.testing.assert_array_equal(s_gpu.grad.cpu().numpy(), s_cpu.grad.numpy())


def test_torch_cuda_graph_capture(dtype):
    """perturb, langevin_step, dsm_loss (per-sample losses) and ssm_loss (a mean within
    device_losses()) with (B,) CUDA parameters
    within device_value_checks(False) are captured in a CUDA graph: each replay reads the
    arrays' current contents and gives the CPU's bits. A host array parameter is refused
    during capture with a RuntimeError, before anything is enqueued."""
    fw = Torch()
    t = fw.torch
    B, D = 6, 70
    x, s = fw.put(batch((B, D), dtype)), fw.put(batch((B, D), dtype, 1))
    sigma = fw.put(np.linspace(0.2, 1.5, B).astype(dtype))

    def step(x, s, sigma):  # CUDA tensors or NumPy arrays
        y = scorekit.perturb(x, sigma, seed=3, counter=1)
        z = scorekit.langevin_step(y, s, sigma, seed=3, counter=2)
        loss, grad = scorekit.dsm_loss(s, sigma, seed=3, counter=3, reduction="none")
        with scorekit.device_losses():  # a 0-d tensor (a float on the CPU)
            mean = scorekit.ssm_loss(s, s, seed=3, counter=4, return_grad=False)
        return y, z, loss, grad, mean

    side = t.cuda.Stream()
    side.wait_stream(t.cuda.current_stream())
    graph = t.cuda.CUDAGraph()
    with scorekit.device_value_checks(False):
        with t.cuda.stream(side):
            step(x, s, sigma)  # warm-up outside the capture
        t.cuda.current_stream().wait_stream(side)
        with t.cuda.graph(graph):
            outs = step(x, s, sigma)
    for trial in range(2):
        xh, sh = batch((B, D), dtype, 10 + trial), batch((B, D), dtype, 20 + trial)
        sig_h = np.linspace(0.3 + trial, 1.2 + trial, B).astype(dtype)
        for dev, host in ((x, xh), (s, sh), (sigma, sig_h)):
            dev.copy_(fw.put(host))
        graph.replay()
        t.cuda.synchronize()
        for got, want in zip(outs, step(xh, sh, sig_h), strict=True):
            np.testing.assert_array_equal(fw.get(got), want)
    with pytest.raises(RuntimeError, match="capturing a CUDA graph"):
        with t.cuda.graph(t.cuda.CUDAGraph()):
            scorekit.perturb(x, 0.5, seed=3)  # a kernel: the graph is not empty
            scorekit.perturb(x, np.linspace(0.2, 1.5, B).astype(dtype), seed=3)


def test_torch_ops_on_cuda_match_the_cpu(dtype):
    """scorekit.torch's autograd ops on CUDA tensors: values and gradients equal to the
    same ops on the CPU, the losses reduced on the device."""
    t = Torch().torch
    import scorekit.torch as st
    tdt = getattr(t, np.dtype(dtype).name)
    x_cpu = t.from_numpy(batch((6, 70), dtype)).requires_grad_()
    s_cpu = t.from_numpy(batch((6, 70), dtype, 1)).requires_grad_()
    x_gpu = x_cpu.detach().cuda().requires_grad_()
    s_gpu = s_cpu.detach().cuda().requires_grad_()
    sigma = t.linspace(0.2, 1.5, 6, dtype=tdt)
    for xx, ss, sig in ((x_cpu, s_cpu, sigma), (x_gpu, s_gpu, sigma.cuda())):
        y = st.perturb(xx, sig, seed=3, counter=1, offset=2)
        loss = st.dsm_loss(ss * y, sig, seed=3, counter=1, offset=2)
        assert loss.device == xx.device and loss.dtype == tdt
        loss.backward()
    np.testing.assert_array_equal(x_gpu.grad.cpu().numpy(), x_cpu.grad.numpy())
    np.testing.assert_array_equal(s_gpu.grad.cpu().numpy(), s_cpu.grad.numpy())
    for kind in ("normal", "uniform", "rademacher"):
        got = getattr(st, kind)((4, 5), seed=2, dtype=tdt, device="cuda")
        assert got.is_cuda
        np.testing.assert_array_equal(got.cpu().numpy(),
                                      getattr(st, kind)((4, 5), seed=2, dtype=tdt).numpy())
    j = t.from_numpy(batch((6, 2, 70), dtype, 2))
    for reduction in ("mean", "none"):
        got = st.ssm_loss(s_gpu.detach(), j.cuda(), seed=1, reduction=reduction)
        want = st.ssm_loss(s_cpu.detach(), j, seed=1, reduction=reduction)
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    # per-sample parameters given as CPU (B,) tensors with CUDA tensors: gradients too
    steps = t.linspace(0.01, 0.02, 6, dtype=tdt)
    for xx, ss in ((x_cpu, s_cpu), (x_gpu, s_gpu)):
        xx.grad = ss.grad = None
        y = st.langevin_step(xx, ss, steps, seed=4)
        (st.perturb(y, 0.3, scale=steps, seed=4) ** 2).sum().backward()
    np.testing.assert_array_equal(x_gpu.grad.cpu().numpy(), x_cpu.grad.numpy())
    np.testing.assert_array_equal(s_gpu.grad.cpu().numpy(), s_cpu.grad.numpy())
    xs = x_gpu.detach().clone()
    with t.no_grad():
        st.langevin_step_(xs, s_gpu.detach(), 0.01, seed=5)
    np.testing.assert_array_equal(xs.cpu().numpy(), st.langevin_step(
        x_cpu.detach(), s_cpu.detach(), 0.01, seed=5).numpy())


def test_jax_arrays_through_dlpack():
    """JAX GPU arrays (DLPack only) reach the kernels zero-copy through PyTorch or CuPy;
    the results are JAX arrays with the CPU's bits (float32: JAX's default)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # before JAX starts
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX without a GPU")
    x, s = batch((5, 70), np.float32), batch((5, 70), np.float32, 1)
    xj, sj = jax.device_put(x), jax.device_put(s)
    got = scorekit.perturb(xj, 0.5, seed=3, offset=2)
    assert isinstance(got, jax.Array)
    np.testing.assert_array_equal(np.asarray(got), scorekit.perturb(x, 0.5, seed=3, offset=2))
    loss, grad = scorekit.dsm_loss(sj, 0.7, seed=2, reduction="none")
    want_loss, want_grad = scorekit.dsm_loss(s, 0.7, seed=2, reduction="none")
    np.testing.assert_array_equal(np.asarray(loss), want_loss)
    np.testing.assert_array_equal(np.asarray(grad), want_grad)
    step = scorekit.noisy_affine_step(xj, sj, 1.0, 0.1, 0.2, seed=4)
    want = scorekit.noisy_affine_step(x, s, 1.0, 0.1, 0.2, seed=4)
    np.testing.assert_array_equal(np.asarray(step.x), want.x)
    np.testing.assert_array_equal(np.asarray(step.x_mean), want.x_mean)
    logp = -0.5 * np.sum(x.astype(np.float64) ** 2, axis=1)
    got = scorekit.mala_accept(xj, sj, logp, sj, xj, logp[::-1].copy(), 0.3, seed=1)
    want = scorekit.mala_accept(x, s, logp, s, x, logp[::-1].copy(), 0.3, seed=1)
    for g, w in zip(got, want, strict=True):  # logp: float64, NumPy unless JAX has x64 on
        np.testing.assert_array_equal(np.asarray(g), w)
    assert isinstance(got.x, jax.Array) and isinstance(got.accepted, jax.Array)
    with pytest.raises(ValueError, match="out is a CUDA array of type"):
        scorekit.perturb(xj, 0.5, seed=1, out=xj)


def test_outputs_through_lazy_negation_are_refused():
    """A CUDA tensor with PyTorch's lazy negation bit cannot be written through (resolving
    it makes a copy): as out= it is refused by name; as an input its values are taken."""
    torch = Torch().torch
    lazy = torch.complex(torch.zeros(2, 3), torch.ones(2, 3)).cuda().conj().imag
    x = torch.ones(2, 3, device="cuda")
    with pytest.raises(ValueError, match="out carries PyTorch's lazy negation"):
        scorekit.perturb(x, 0.5, seed=1, out=lazy)
    with pytest.raises(ValueError, match="out carries PyTorch's lazy negation"):
        scorekit.normal((2, 3), seed=1, out=lazy)
    np.testing.assert_array_equal(scorekit.perturb(lazy, 0.5, seed=1).cpu().numpy(),
                                  scorekit.perturb(-np.ones((2, 3), np.float32), 0.5, seed=1))


def test_outputs_live_on_the_callers_framework_and_device(fw):
    x = fw.put(batch((4, 6), np.float32))
    out = scorekit.perturb(x, 0.5, seed=1)
    assert type(out) is type(x)
    assert out.__dlpack_device__() == x.__dlpack_device__()


def test_kernels_go_on_the_callers_current_stream(monkeypatch):
    from scorekit import _gpu

    t = Torch().torch
    seen = []
    backend = _gpu._cuda

    class Recorder:
        def __getattr__(self, name):
            real = getattr(backend, name)
            if not callable(real) or name in ("device_count", "runtime_status") \
                    or name.endswith("_work"):
                return real

            def call(*args):
                seen.append(args[-1])  # every launcher takes the stream handle last
                return real(*args)
            return call

    monkeypatch.setattr(_gpu, "_cuda", Recorder())
    x = t.randn(1024, 1024, device="cuda")
    s = t.cuda.Stream()
    s.wait_stream(t.cuda.current_stream())  # x is written on the default stream
    with t.cuda.stream(s):
        y = scorekit.perturb(x, 0.5, seed=1)
        loss, grad = scorekit.dsm_loss(x, 0.5, seed=1, reduction="none")
    s.synchronize()
    assert len(seen) >= 2 and all(handle == s.cuda_stream for handle in seen)
    np.testing.assert_array_equal(y.cpu().numpy(), scorekit.perturb(x.cpu().numpy(), 0.5, seed=1))


def test_uploads_at_every_payload_size_and_past_the_largest():
    """Host bytes reach the device whole, on the given stream, and nothing around them
    changes: at the edges of each payload size of the copy kernel (cuda/inline_copy.cuh),
    past the largest (staged), and in copies that are not whole words or not
    word-aligned (staged too). Per-sample host parameters of those sizes (both of
    perturb's, so one payload for two arrays) give the CPU's bits."""
    from scorekit._gpu import _upload

    t = Torch().torch
    side = t.cuda.Stream()
    rng = np.random.default_rng(5)
    for nbytes in (1, 3, 4, 6, 2048, 2052, 8192, 8196, 32700, 32704, 32708, 1 << 20):
        for shift in (0, 2, 4):
            host = rng.integers(0, 256, nbytes, dtype=np.uint8)
            dev = t.empty((nbytes + 16,), dtype=t.uint8, device="cuda")
            side.wait_stream(t.cuda.current_stream())
            with t.cuda.stream(side):  # a copy on another stream would come before the fill
                t.cuda._sleep(1_000_000)
                dev.fill_(7)
            _upload(host, dev.data_ptr() + shift, dev.device.index, side.cuda_stream)
            side.synchronize()
            got = dev.cpu().numpy()
            np.testing.assert_array_equal(got[shift:shift + nbytes], host)
            assert (got[:shift] == 7).all() and (got[shift + nbytes:] == 7).all()
    fw = Torch()
    for B in (255, 1023, 4087, 9000):  # both arrays: 2, 8 and 32 KB payloads, then staged
        x = batch((B, 3), np.float32)
        sig = np.linspace(0.1, 2.0, B).astype(np.float32)
        scale = sig[::-1].copy()
        got = scorekit.perturb(fw.put(x), sig, scale=scale, seed=2, counter=1)
        np.testing.assert_array_equal(fw.get(got), scorekit.perturb(x, sig, scale=scale, seed=2,
                                                                    counter=1))


def test_out_of_memory_is_the_frameworks_error():
    """scorekit allocates its outputs through the caller's framework: running out
    of memory there raises that framework's error, and nothing is launched."""
    t = Torch().torch
    free, _ = t.cuda.mem_get_info()
    x = t.empty((int(free * 0.6) // 4,), device="cuda")  # the output cannot fit beside it
    with pytest.raises(t.cuda.OutOfMemoryError):
        scorekit.perturb(x.view(1, -1), 0.5, seed=1)
    del x
    t.cuda.empty_cache()


def test_requires_grad_and_cpu_mixes_are_refused():
    t = Torch().torch
    x = t.randn(3, 4, device="cuda", requires_grad=True)
    with pytest.raises(TypeError, match="x requires grad"):
        scorekit.perturb(x, 0.5, seed=1)
    with pytest.raises(ValueError, match="score must be a CUDA array"):
        scorekit.langevin_step(x.detach(), np.ones((3, 4), np.float32), 0.1, seed=1)
