"""scorekit.torch: the same results as the NumPy API, gradients, compile, zero-copy, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("scorekit.torch")

import scorekit

DTYPES = [torch.float32, torch.float64]
NP = {torch.float32: np.float32, torch.float64: np.float64}
B, SHAPE = 5, (3, 4)
KW = dict(seed=2**64 - 3, counter=9)  # a seed above 2**63 crosses the int64 schema


def tensors(dtype, seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((B, *SHAPE), generator=g, dtype=dtype) for _ in range(n)]


def sigmas(dtype):
    return torch.linspace(0.2, 1.4, B, dtype=dtype)


def host(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- same bits as NumPy

@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_and_probes_match_numpy(dtype):
    for name in ("normal", "uniform", "rademacher"):
        got = getattr(st, name)((B, *SHAPE), dtype=dtype, offset=4, **KW)
        want = getattr(scorekit, name)((B, *SHAPE), dtype=NP[dtype], offset=4, **KW)
        assert got.dtype == dtype
        np.testing.assert_array_equal(host(got), want)
    for kind in ("gaussian", "rademacher", "sphere"):
        got = st.probes((B, *SHAPE), kind=kind, dtype=dtype, num_probes=3, offset=2, **KW)
        want = scorekit.probes((B, *SHAPE), kind=kind, dtype=NP[dtype], num_probes=3, offset=2,
                               **KW)
        np.testing.assert_array_equal(host(got), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_match_numpy_bit_for_bit(dtype):
    x, s, _ = tensors(dtype)
    sig = sigmas(dtype)
    np.testing.assert_array_equal(
        host(st.perturb(x, sig, scale=0.7, offset=3, **KW)),
        scorekit.perturb(host(x), host(sig), scale=0.7, offset=3, **KW))
    np.testing.assert_array_equal(
        host(st.langevin_step(x, s, sig, offset=1, **KW)),
        scorekit.langevin_step(host(x), host(s), host(sig), offset=1, **KW))
    step = st.noisy_affine_step(x, s, 0.9, sig, 0.3, offset=2, **KW)
    want = scorekit.noisy_affine_step(host(x), host(s), 0.9, host(sig), 0.3, offset=2, **KW)
    np.testing.assert_array_equal(host(step.x), want.x)
    np.testing.assert_array_equal(host(step.x_mean), want.x_mean)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_and_gradients_match_numpy(dtype, reduction):
    _, s, noise = tensors(dtype)
    jvp = torch.randn((B, 2, *SHAPE), dtype=dtype)
    trace = torch.randn(B, dtype=dtype)
    sig = sigmas(dtype)
    cases = [
        (lambda s: st.dsm_loss(s, sig, reduction=reduction, offset=6, **KW), (s,),
         lambda: scorekit.dsm_loss(host(s), host(sig), reduction=reduction, offset=6, **KW)),
        (lambda s: st.dsm_loss(s, 0.5, noise=noise, weight="none", reduction=reduction), (s,),
         lambda: scorekit.dsm_loss(host(s), 0.5, noise=host(noise), weight="none",
                                   reduction=reduction)),
        (lambda s, j: st.ssm_loss(s, j, kind="rademacher", variance_reduction=False,
                                  reduction=reduction, offset=1, **KW), (s, jvp),
         lambda: scorekit.ssm_loss(host(s), host(jvp), kind="rademacher",
                                   variance_reduction=False, reduction=reduction, offset=1,
                                   **KW)),
        (lambda s, t: st.ism_loss(s, t, reduction=reduction), (s, trace),
         lambda: scorekit.ism_loss(host(s), host(trace), reduction=reduction)),
    ]
    for fn, inputs, numpy_call in cases:
        leaves = [t.clone().requires_grad_() for t in inputs]
        loss = fn(*leaves)
        want = numpy_call()
        assert loss.dtype == dtype
        assert loss.shape == ((B,) if reduction == "none" else ())
        np.testing.assert_array_equal(host(loss), np.asarray(want[0], dtype=NP[dtype]))
        loss.backward(torch.ones_like(loss))
        for leaf, grad in zip(leaves, want[1:]):
            np.testing.assert_array_equal(host(leaf.grad), grad)
        with torch.no_grad():  # no gradient wanted: the same loss
            np.testing.assert_array_equal(host(fn(*inputs)), host(loss))


def test_backward_scales_by_the_incoming_gradient():
    s = torch.randn(B, 6, dtype=torch.float64, requires_grad=True)
    w = torch.arange(1.0, B + 1, dtype=torch.float64)
    (st.dsm_loss(s, 0.5, seed=1, reduction="none") * w).sum().backward()
    _, grad = scorekit.dsm_loss(host(s), 0.5, seed=1, reduction="none")
    np.testing.assert_allclose(host(s.grad), grad * host(w)[:, None], rtol=1e-15)


# ---------------------------------------------------------------- gradients

def f64(*shape, low=None):
    g = torch.Generator().manual_seed(sum(shape))
    t = torch.rand(shape, generator=g, dtype=torch.float64) + low if low is not None else \
        torch.randn(shape, generator=g, dtype=torch.float64)
    return t.requires_grad_()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_losses(reduction):
    s, sig, w = f64(4, 3), f64(4, low=0.3).detach(), f64(4, low=0.0).detach()
    assert torch.autograd.gradcheck(
        lambda s: st.dsm_loss(s, sig, weight=w, seed=5,
                              reduction=reduction), (s,))
    assert torch.autograd.gradcheck(
        lambda s, j: st.ssm_loss(s, j, seed=5, kind="sphere", reduction=reduction,
                                 variance_reduction=False), (s, f64(4, 2, 3)))
    assert torch.autograd.gradcheck(
        lambda s, j: st.ssm_loss(s, j, seed=5, reduction=reduction), (s, f64(4, 3)))
    assert torch.autograd.gradcheck(
        lambda s, t: st.ism_loss(s, t, reduction=reduction), (s, f64(4)))


def test_gradcheck_perturb_and_steps():
    x, s = f64(4, 3), f64(4, 3)
    assert torch.autograd.gradcheck(
        lambda x, sig, sc: st.perturb(x, sig, scale=sc, seed=3, counter=2),
        (x, f64(4, low=0.2), f64(1, low=0.5).reshape(())))
    assert torch.autograd.gradcheck(
        lambda x, sig, sc: st.perturb(x, sig, scale=sc, seed=3, offset=7),
        (x, f64(1, low=0.2).reshape(()), f64(4, low=0.5)))
    assert torch.autograd.gradcheck(lambda x, s: st.langevin_step(x, s, 0.1, seed=3), (x, s))
    a = torch.tensor([0.9, 1.1, 1.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, s: st.noisy_affine_step(x, s, a, 0.25, 0.1, seed=3), (x, s))
    assert torch.autograd.gradcheck(
        lambda x, s: st.noisy_affine_step(x, s, a, 0.25, 0.1, seed=3).x_mean, (x, s))


def test_sigma_gradient_is_the_noise():
    x = torch.randn(B, *SHAPE, dtype=torch.float64)
    sig = sigmas(torch.float64).requires_grad_()
    st.perturb(x, sig, seed=4).sum().backward()
    z = scorekit.normal((B, *SHAPE), seed=4, dtype=np.float64)
    np.testing.assert_allclose(host(sig.grad), z.reshape(B, -1).sum(1), rtol=1e-12)


@pytest.mark.parametrize("name,args", [
    ("perturb", lambda x, s, p: (x, p, None, 3, 1, 2)),
    ("langevin_step", lambda x, s, p: (x, s, p, -3, 1, 0)),
    ("noisy_affine_step", lambda x, s, p: (x, s, p, p, p, 3, 1, 0)),
    ("dsm_loss", lambda x, s, p: (s, p, None, None, 3, 1, 2, "mean", True)),
    ("ssm_loss", lambda x, s, p: (s, x, 3, 1, 0, "gaussian", True, "none", True)),
    ("ism_loss", lambda x, s, p: (s, p, "sum", True)),
])
def test_opcheck(name, args):
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch."""
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    p = torch.rand(4, dtype=torch.float64) + 0.5
    op = getattr(torch.ops.scorekit, name).default
    result = torch.library.opcheck(op, args(x, s, p))
    assert set(result.values()) == {"SUCCESS"}, result


# ---------------------------------------------------------------- torch.compile

def test_compiled_training_step_matches_eager():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))

    def step_loss(x, sigma, counter):
        xt = st.perturb(x, sigma, seed=7, counter=counter)
        s = net(torch.cat([xt, sigma[:, None].log()], 1)) / sigma[:, None]
        return st.dsm_loss(s, sigma, seed=7, counter=counter)

    compiled = torch.compile(step_loss, fullgraph=True)
    x = torch.randn(64, 2)
    sigma = torch.rand(64) + 0.1
    for counter in range(3):  # a new counter each step, as in training
        results = []
        for fn in (compiled, step_loss):
            net.zero_grad()
            loss = fn(x, sigma, counter)
            loss.backward()
            results.append((loss.detach(), [p.grad.clone() for p in net.parameters()]))
        (l1, g1), (l2, g2) = results
        torch.testing.assert_close(l1, l2, rtol=1e-6, atol=0)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_compiled_sampling_step_matches_eager():
    def sample(x, counter):
        for k in range(3):
            x = st.langevin_step(x, -x, 0.05, seed=1, counter=counter + k)
        return st.noisy_affine_step(x, -x, 0.99, 0.1, 0.2, seed=1, counter=counter + 9).x

    x = torch.randn(16, 4, dtype=torch.float64)
    compiled = torch.compile(sample, fullgraph=True)
    for counter in (0, 10):
        torch.testing.assert_close(compiled(x, counter), sample(x, counter), rtol=0, atol=0)


def test_compiled_in_place_sampling_step_matches_eager():
    """The in-place ops trace without graph breaks too (their argument checks included)."""
    def sample(x, score, counter):
        st.langevin_step_(x, score, 0.01, seed=3, counter=counter)
        return st.perturb_(x, 0.5, seed=3, counter=counter + 1)

    x, s = torch.randn(4, 3), torch.randn(4, 3)
    compiled = torch.compile(sample, fullgraph=True)
    with torch.no_grad():
        for counter in (0, 5):
            torch.testing.assert_close(compiled(x.clone(), s, counter),
                                       sample(x.clone(), s, counter), rtol=0, atol=0)


# ---------------------------------------------------------------- zero copy and in place

def test_inputs_are_viewed_not_copied():
    x = torch.randn(B, *SHAPE)
    assert st._host(x).ctypes.data == x.data_ptr()
    out = st.perturb(x, 0.5, seed=1)
    assert out.is_contiguous() and out.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_ops(dtype):
    x, s, _ = tensors(dtype)
    ptr = x.data_ptr()
    want = host(st.langevin_step(x, s, 0.1, **KW)).copy()
    with torch.no_grad():
        assert st.langevin_step_(x, s, 0.1, **KW) is x
    assert x.data_ptr() == ptr
    np.testing.assert_array_equal(host(x), want)
    want = host(st.perturb(x, sigmas(dtype), **KW)).copy()
    st.perturb_(x, sigmas(dtype), **KW)
    np.testing.assert_array_equal(host(x), want)


def test_non_contiguous_inputs_are_served():
    x = torch.randn(B, 8, dtype=torch.float64)[:, ::2]
    np.testing.assert_array_equal(host(st.perturb(x, 0.5, seed=1)),
                                  scorekit.perturb(np.ascontiguousarray(host(x)), 0.5, seed=1))


# ---------------------------------------------------------------- errors

def test_errors_name_the_argument():
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="x is on meta"):
        st.perturb(torch.empty(4, 3, device="meta"), 0.5, seed=1)
    with pytest.raises(TypeError, match="score must be float32 or float64"):
        st.dsm_loss(torch.ones(4, 3, dtype=torch.int32), 0.5, seed=1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        st.perturb(np.ones((4, 3)), 0.5, seed=1)
    with pytest.raises(ValueError, match="seed must be in"):
        st.perturb(x, 0.5, seed=-1)
    with pytest.raises(ValueError, match="counter must be below 2\\*\\*63"):
        st.perturb(x, 0.5, seed=1, counter=2**63)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        st.perturb(x, 0.0, seed=1)
    with pytest.raises(ValueError, match="sigma must be a scalar or have shape"):
        st.perturb(x, torch.ones(3), seed=1)
    with pytest.raises(TypeError, match="step_size must be a real number"):
        st.langevin_step(x, x, "0.1", seed=1)
    with pytest.raises(ValueError, match="step_size requires grad"):
        st.langevin_step(x, x, torch.tensor(0.1, requires_grad=True), seed=1)
    with pytest.raises(ValueError, match="noise requires grad"):
        st.dsm_loss(x, 0.5, noise=torch.ones(4, 3, requires_grad=True))
    with pytest.raises(ValueError, match="exactly one of seed= and noise="):
        st.dsm_loss(x, 0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        st.dsm_loss(x, 0.5, seed=1, reduction="max")
    with pytest.raises(TypeError, match="score has dtype float64"):
        st.langevin_step(x, x.double(), 0.1, seed=1)
    with pytest.raises(ValueError, match="jvp must have score's shape"):
        st.ssm_loss(x, torch.ones(4, 2), seed=1)
    with pytest.raises(ValueError, match="in-place scorekit ops are not differentiable"):
        st.langevin_step_(x.clone().requires_grad_(), x, 0.1, seed=1)
    with pytest.raises(ValueError, match="x must be contiguous"):
        st.perturb_(torch.ones(4, 6)[:, ::2], 0.5, seed=1)
    lazy = torch.complex(torch.zeros(1, 1), torch.ones(1, 1)).conj().imag  # contiguous, neg bit
    for inplace in (lambda: st.perturb_(lazy, 0.5, seed=1),
                    lambda: st.langevin_step_(lazy, torch.zeros(1, 1), 0.1, seed=1)):
        with pytest.raises(ValueError, match="x carries PyTorch's lazy negation"):
            inplace()
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        st.normal((2, 3), seed=1, dtype=torch.int64)
    with pytest.raises(ValueError, match="kind must be one of"):
        st.probes((2, 3), kind="cauchy", seed=1)


def test_numpy_api_refuses_other_devices_by_name():
    with pytest.raises(TypeError, match="x is on a .* device"):
        scorekit.perturb(_FakeDevice(), 0.5, seed=1)
    # a CPU tensor goes straight in (a DLPack view)
    x = torch.randn(3, 2)
    np.testing.assert_array_equal(scorekit.perturb(x, 0.5, seed=1),
                                  scorekit.perturb(host(x), 0.5, seed=1))


class _FakeDevice:
    """An array that reports a CUDA device through the DLPack protocol."""

    def __dlpack__(self, **kwargs):
        raise AssertionError("must not be exported")

    def __dlpack_device__(self):
        return (2, 0)


# ---------------------------------------------------------------- found in review

def test_compiled_losses_take_non_contiguous_scores():
    """Gradient outputs are contiguous in the fake implementation as in the kernel."""
    w = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 5, dtype=torch.float64)
    sig = torch.rand(6, dtype=torch.float64) + 0.5
    trace = torch.randn(6, dtype=torch.float64)
    for loss in (lambda s: st.dsm_loss(s, sig, seed=3, reduction="sum"),
                 lambda s: st.ism_loss(s, trace),
                 lambda s: st.ssm_loss(s, s * 2, seed=3, variance_reduction=False)):
        def f(w, loss=loss):
            return loss((w @ x.t()).t())  # score with strides (1, 6)
        eager = torch.autograd.grad(f(w), w)[0]
        compiled = torch.autograd.grad(torch.compile(f, fullgraph=True)(w), w)[0]
        torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-14)
    s = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(memory_format=torch.channels_last)
    result = torch.library.opcheck(torch.ops.scorekit.dsm_loss.default,
                                   (s.requires_grad_(), torch.tensor(0.5, dtype=torch.float64),
                                    None, None, 3, 1, 0, "none", True))
    assert set(result.values()) == {"SUCCESS"}, result


def test_second_derivatives_are_refused_not_zero():
    s = torch.randn(4, 3, dtype=torch.float64)
    t = torch.randn(4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.functional.hessian(lambda s: st.ism_loss(s, t), s)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.gradgradcheck(lambda s: st.dsm_loss(s, 0.5, seed=1),
                                     (s.clone().requires_grad_(),))


def test_in_place_step_refuses_a_score_that_requires_grad():
    w = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="score requires grad"):
        st.langevin_step_(x, -w * x, 0.1, seed=1)


def test_compiled_calls_check_the_stream_and_do_not_recompile_per_counter():
    from torch._dynamo.testing import CompileCounter
    x = torch.randn(4, 3)
    with pytest.raises(Exception, match="seed must be in"):
        torch.compile(lambda x, s: st.perturb(x, 0.5, seed=s), fullgraph=True)(x, -1)
    counter = CompileCounter()
    step = torch.compile(lambda x, c: st.langevin_step(x, -x, 0.1, seed=1, counter=c),
                         backend=counter, fullgraph=True)
    for c in range(6):
        np.testing.assert_array_equal(host(step(x, c)),
                                      host(st.langevin_step(x, -x, 0.1, seed=1, counter=c)))
    assert counter.frame_count <= 2  # the first counter, then one dynamic-integer graph


def test_ops_match_the_reference_in_float64():
    """The framework ops against scorekit.reference directly (float64, no offset)."""
    from scorekit import reference as ref
    g = torch.Generator().manual_seed(5)
    x, s = (torch.randn(B, *SHAPE, generator=g, dtype=torch.float64) for _ in range(2))
    jvp = torch.randn(B, 3, *SHAPE, generator=g, dtype=torch.float64)
    sig = sigmas(torch.float64)
    kw = {"seed": 77, "counter": 3}
    rtol = {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(host(st.perturb(x, sig, scale=0.8, **kw)),
                               ref.perturb(host(x), host(sig), scale=0.8, **kw), **rtol)
    np.testing.assert_allclose(host(st.langevin_step(x, s, sig, **kw)),
                               ref.langevin_step(host(x), host(s), host(sig), **kw), **rtol)
    step = st.noisy_affine_step(x, s, 0.9, sig, 0.2, **kw)
    want = ref.affine_step(host(x), host(s), 0.9, host(sig), 0.2, **kw)
    np.testing.assert_allclose(host(step.x), want[0], **rtol)
    np.testing.assert_allclose(host(step.x_mean), want[1], **rtol)
    for fn, leaves, want in [
        (lambda s: st.dsm_loss(s, sig, reduction="sum", **kw), (s,),
         ref.dsm_loss(host(s), host(sig), reduction="sum", **kw)),
        (lambda s, j: st.ssm_loss(s, j, kind="sphere", variance_reduction=False, **kw), (s, jvp),
         ref.ssm_loss(host(s), host(jvp), kind="sphere", variance_reduction=False, **kw)),
    ]:
        leaves = [t.clone().requires_grad_() for t in leaves]
        loss = fn(*leaves)
        loss.backward()
        np.testing.assert_allclose(loss.item(), want[0], **rtol)
        for leaf, grad in zip(leaves, want[1:]):
            np.testing.assert_allclose(host(leaf.grad), grad, **rtol)
