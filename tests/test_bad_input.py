"""Bad input: the exception type, a message naming the argument, and nothing written."""

import numpy as np
import pytest

import scorekit

X = np.ones((4, 3), dtype=np.float32)


def ok_kwargs(kernel):
    x = X.copy()
    return {
        "perturb": dict(x=x, sigma=0.5, seed=1),
        "langevin_step": dict(x=x, score=x.copy(), step_size=0.1, seed=1),
        "dsm_loss": dict(score=x, sigma=0.5, seed=1),
        "normal": dict(shape=(4, 3), seed=1),
    }[kernel]


def call(kernel, **overrides):
    kw = ok_kwargs(kernel)
    kw.update(overrides)
    fn = getattr(scorekit, kernel)
    if kernel == "normal":
        return fn(kw.pop("shape"), **kw)
    first = "score" if kernel == "dsm_loss" else "x"
    return fn(kw.pop(first), **kw)


BAD_ARRAYS = [
    np.ones((4, 3), dtype=np.int64),
    np.ones((4, 3), dtype=np.bool_),
    np.ones((4, 3), dtype=np.complex128),
    np.ones((4, 3), dtype=np.float16),
    np.ones((4, 3), dtype=object),
]


@pytest.mark.parametrize("arr", BAD_ARRAYS, ids=lambda a: a.dtype.name)
@pytest.mark.parametrize("kernel,arg", [("perturb", "x"), ("langevin_step", "x"),
                                        ("langevin_step", "score"), ("dsm_loss", "score"),
                                        ("dsm_loss", "noise")])
def test_unsupported_dtypes_raise_type_error(kernel, arg, arr):
    kw = {arg: arr}
    if arg == "noise":
        kw["seed"] = None
    with pytest.raises(TypeError, match=rf"{arg}.*{arr.dtype.name}|{arr.dtype.name}.*{arg}"):
        call(kernel, **kw)


@pytest.mark.parametrize("kernel,overrides,arg", [
    ("langevin_step", dict(score=X.astype(np.float64)), "score"),
    ("perturb", dict(sigma=np.full(4, 0.5)), "sigma"),
    ("perturb", dict(scale=np.full(4, 0.5)), "scale"),
    ("langevin_step", dict(step_size=np.full(4, 0.1)), "step_size"),
    ("dsm_loss", dict(weight=np.ones(4)), "weight"),
    ("dsm_loss", dict(seed=None, noise=X.astype(np.float64)), "noise"),
])
def test_mixed_dtypes_raise_type_error(kernel, overrides, arg):
    with pytest.raises(TypeError, match=rf"{arg} has dtype float64 but the call's arrays are float32"):
        call(kernel, **overrides)


@pytest.mark.parametrize("dtype", [np.int32, "int64", np.float16, np.complex64, object, "U3"])
def test_noise_dtype_must_be_float(dtype):
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        scorekit.normal(3, seed=0, dtype=dtype)


@pytest.mark.parametrize("kernel,overrides,pattern", [
    ("langevin_step", dict(score=np.ones((4, 2), np.float32)), r"score must have shape \(4, 3\), got \(4, 2\)"),
    ("dsm_loss", dict(seed=None, noise=np.ones((3, 3), np.float32)), r"noise must have shape \(4, 3\)"),
    ("perturb", dict(sigma=np.ones(3, np.float32)), r"sigma must be a scalar or have shape \(B,\) = \(4,\), got shape \(3,\)"),
    ("perturb", dict(sigma=np.ones((4, 1), np.float32)), r"sigma .*got shape \(4, 1\)"),
    ("perturb", dict(scale=np.ones(5, np.float32)), r"scale .*\(4,\)"),
    ("langevin_step", dict(step_size=np.ones(2, np.float32)), r"step_size .*\(4,\)"),
    ("dsm_loss", dict(weight=np.ones(5, np.float32)), r"weight .*\(4,\)"),
    ("perturb", dict(sigma=0.0), r"sigma must be > 0"),
    ("perturb", dict(sigma=-1.0), r"sigma must be > 0"),
    ("perturb", dict(sigma=np.array([1, 1, 0, 1], np.float32)), r"sigma must be > 0"),
    ("perturb", dict(sigma=1e-50), r"sigma must be > 0 \(in float32\)"),
    ("perturb", dict(sigma=float("nan")), r"sigma must be finite"),
    ("perturb", dict(sigma=float("inf")), r"sigma must be finite"),
    ("perturb", dict(sigma=1e39), r"sigma must be finite \(in float32\)"),
    ("perturb", dict(scale=float("nan")), r"scale must be finite"),
    ("dsm_loss", dict(sigma=np.array([1, np.nan, 1, 1], np.float32)), r"sigma must be finite"),
    ("langevin_step", dict(step_size=-0.1), r"step_size must be >= 0"),
    ("langevin_step", dict(step_size=float("inf")), r"step_size must be finite"),
    ("langevin_step", dict(step_size=np.array([0.1, -1, 0.1, 0.1], np.float32)), r"step_size must be >= 0"),
    ("dsm_loss", dict(weight=-1.0), r"weight must be >= 0"),
    ("dsm_loss", dict(weight="sigma"), r"weight must be 'sigma2', 'none'"),
    ("dsm_loss", dict(reduction="avg"), r"reduction must be one of"),
    ("dsm_loss", dict(seed=None), r"exactly one of seed= and noise="),
    ("dsm_loss", dict(noise=X), r"exactly one of seed= and noise="),
    ("dsm_loss", dict(seed=None, noise=X, counter=3), r"counter .* only with seed="),
    ("perturb", dict(x=np.float32(1.0)), r"x must have shape \(B, \.\.\.\)"),
    ("dsm_loss", dict(score=np.ones((), np.float32)), r"score must have shape \(B, \.\.\.\)"),
])
def test_value_errors_name_the_argument(kernel, overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(kernel, **overrides)


@pytest.mark.parametrize("arg", ["seed", "counter"])
@pytest.mark.parametrize("value", [-1, 2**64, 2**70])
@pytest.mark.parametrize("kernel", ["normal", "perturb", "langevin_step", "dsm_loss"])
def test_seed_and_counter_out_of_range(kernel, arg, value):
    with pytest.raises(ValueError, match=rf"{arg} must be in \[0, 2\*\*64\), got {value}"):
        call(kernel, **{arg: value})


@pytest.mark.parametrize("value", [1.5, "3", None, True, np.timedelta64(5)])
def test_seed_of_the_wrong_type(value):
    with pytest.raises(TypeError, match="seed must be an integer"):
        scorekit.normal(3, seed=value)


def test_seed_edges_are_accepted():
    a = scorekit.normal(5, seed=2**64 - 1, counter=2**64 - 1)
    b = scorekit.normal(5, seed=np.uint64(2**64 - 1), counter=np.uint64(2**64 - 1))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,exc", [((-1, 3), ValueError), ((2.5,), TypeError), ("ab", TypeError),
                                       (None, TypeError)])
def test_bad_shapes(shape, exc):
    with pytest.raises(exc, match="shape"):
        scorekit.normal(shape, seed=0)


def _bad_outs():
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    return [
        (np.zeros((4, 4), np.float32), r"out must have shape \(4, 3\), got \(4, 4\)"),
        (np.zeros((4, 3), np.float64), r"out must have dtype float32, got float64"),
        (ro, r"out is read-only"),
        (np.zeros((3, 4), np.float32).T, r"out must be C-contiguous"),
        ([[0.0] * 3] * 4, r"out must be a numpy.ndarray"),
        (np.ma.masked_array(np.zeros((4, 3), np.float32)), r"out must be a numpy.ndarray"),
        (_unaligned((4, 3), np.float32), r"out must be aligned"),
    ]


def _unaligned(shape, dtype):
    """A C-contiguous array of ``dtype`` whose data starts one byte off alignment."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    arr = np.zeros(n + 1, np.uint8)[1:].view(dtype).reshape(shape)
    assert not arr.flags.aligned and arr.flags.c_contiguous
    return arr


@pytest.mark.parametrize("kernel", ["normal", "perturb", "langevin_step"])
@pytest.mark.parametrize("case", range(7))
def test_bad_out(kernel, case):
    out, pattern = _bad_outs()[case]
    kw = {"dtype": np.float32} if kernel == "normal" else {}
    with pytest.raises(ValueError, match=pattern):
        call(kernel, out=out, **kw)


@pytest.mark.parametrize("dtype", [np.int64, np.float16, ">f4", np.complex64])
@pytest.mark.parametrize("kernel", ["normal", "uniform", "rademacher"])
def test_noise_out_dtype_names_out(kernel, dtype):
    out = np.zeros((4, 3), dtype)
    with pytest.raises(ValueError, match=r"out must have dtype float32 or float64"):
        getattr(scorekit, kernel)((4, 3), seed=0, out=out)
    assert np.all(out == 0)


def test_unaligned_inputs_are_copied():
    x = _unaligned((4, 3), np.float64)
    x[...] = np.arange(12.0).reshape(4, 3)
    got = scorekit.perturb(x, 0.5, seed=3)
    np.testing.assert_array_equal(got, scorekit.perturb(np.ascontiguousarray(x), 0.5, seed=3))


def test_huge_shape_names_shape():
    with pytest.raises(ValueError, match=r"shape .* more elements than an array can hold"):
        scorekit.normal((2**40, 2**40), seed=0)


@pytest.mark.parametrize("kernel,overrides", [
    ("perturb", dict(sigma=-1.0)),
    ("perturb", dict(seed=-1)),
    ("langevin_step", dict(step_size=float("nan"))),
    ("langevin_step", dict(score=np.ones((4, 3), np.int32))),
    ("normal", dict(counter=2**64)),
])
def test_out_is_untouched_on_error(kernel, overrides):
    out = np.full((4, 3), 7.0, dtype=np.float32)
    with pytest.raises((TypeError, ValueError)):
        call(kernel, out=out, **overrides)
    assert np.all(out == 7.0)


def test_return_grad_must_be_bool():
    with pytest.raises(TypeError, match="return_grad must be a bool"):
        scorekit.dsm_loss(X, 0.5, seed=0, return_grad="yes")


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                   (True, TypeError), (10**6, ValueError), (2**70, ValueError)])
def test_set_num_threads_rejects(n, exc, threads):
    with pytest.raises(exc, match="n must be"):
        scorekit.set_num_threads(n)


def test_masked_arrays_are_rejected():
    masked = np.ma.masked_array(np.ones((4, 3), np.float32), mask=np.zeros((4, 3), bool))
    with pytest.raises(TypeError, match="x is a masked array"):
        scorekit.perturb(masked, 0.5, seed=0)
    with pytest.raises(TypeError, match="sigma is a masked array"):
        scorekit.perturb(X, np.ma.masked_array(np.ones(4, np.float32)), seed=0)
    with pytest.raises(TypeError, match="sigma is a masked array"):
        scorekit.perturb(X, np.ma.masked_array(0.5), seed=0)


@pytest.mark.parametrize("value", [-1e-50, [0.1, -1e-50, 0.1, 0.1], -0.0])
@pytest.mark.parametrize("kernel,arg", [("langevin_step", "step_size"), ("dsm_loss", "weight")])
def test_negative_values_that_round_to_zero_are_rejected(kernel, arg, value):
    if value == -0.0 and not isinstance(value, list):
        call(kernel, **{arg: value})  # -0.0 is >= 0
        return
    with pytest.raises(ValueError, match=rf"{arg} must be >= 0"):
        call(kernel, **{arg: value})


def test_sigma_that_rounds_to_zero_is_rejected():
    with pytest.raises(ValueError, match=r"sigma must be > 0 \(in float32\), got 0.0"):
        scorekit.perturb(X, 1e-50, seed=0)
    with pytest.raises(ValueError, match=r"sigma must be > 0"):
        scorekit.perturb(X, [0.5, 1e-50, 0.5, 0.5], seed=0)


@pytest.mark.parametrize("value,exc,pattern", [
    (["a", "b", "c", "d"], TypeError, "sigma must be a real number or a length-B array"),
    ([1 + 1j] * 4, TypeError, "sigma must be a real number or a length-B array"),
    ([1.0, 2.0], ValueError, r"sigma must be a scalar or have shape \(B,\) = \(4,\)"),
    ([1.0, 1e39, 1.0, 1.0], ValueError, r"sigma must be finite \(in float32\)"),
    (np.array(True), TypeError, "sigma must be a real number"),
])
def test_sequences_of_parameters(value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        scorekit.perturb(X, value, seed=0)


@pytest.mark.parametrize("kernel,dtype,value", [
    ("langevin_step", np.float32, 2e38), ("langevin_step", np.float32, [0.1, 2e38, 0.1, 0.1]),
    ("langevin_step", np.float64, 1e308), ("mala_propose", np.float64, 1e308),
    ("mala_propose", np.float64, [0.1, 0.1, 1e308, 0.1])])
def test_step_sizes_whose_double_overflows_are_refused(kernel, dtype, value):
    """The noise scale is sqrt(2 h), taken in the dtype by langevin_step and in float64
    by mala_propose: an h whose double overflows there is refused by name (the result
    would be inf where the reference is finite); the largest accepted one gives finite
    results."""
    x = X.astype(dtype)
    step = getattr(scorekit, kernel)
    with pytest.raises(ValueError, match=r"step_size must be at most .* \(twice it must be "
                                         r"finite\), got"):
        step(x, x, value, seed=1)
    half = float(np.finfo(dtype).max) / 2
    assert np.all(np.isfinite(step(np.zeros_like(x), np.zeros_like(x), half, seed=1)))


def test_float32_step_sizes_to_the_largest_where_the_noise_scale_is_float64():
    """mala_propose and mala_accept work in float64: any finite float32 step is taken."""
    x, big = np.zeros((4, 3), np.float32), float(np.finfo(np.float32).max)
    assert np.all(np.isfinite(scorekit.mala_propose(x, x, big, seed=1)))
    kw = {k: (v.astype(np.float32) if k in ("x", "score", "proposal", "score_proposal") else v)
          for k, v in _mala_args().items()}
    scorekit.mala_accept(**{**kw, "step_size": big}, seed=1)


def test_annealed_langevin_steps_too_large_for_the_dtype_are_refused():
    with pytest.raises(ValueError, match=r"step_lr \* \(sigmas\[0\] / sigmas\[-1\]\)\*\*2 = 1e\+39"
                                         r".* too large for float32"):
        scorekit.annealed_langevin(lambda x, s: -x, X, [1e20, 1.0], n_steps_each=1, step_lr=0.1,
                                   seed=0)


@pytest.mark.parametrize("snr", [np.array([0.1, 0.2]), [0.1], True, "0.1", np.array(True),
                                 1j, np.array(0.1 + 0j), None])
def test_snr_must_be_one_real_number(snr):
    with pytest.raises(TypeError, match="snr must be a real number"):
        scorekit.corrector_step(X, X, snr=snr, seed=0)


class _OnDevice:
    """A 0-d value on a (pretend) CUDA device: as a 0-d CUDA tensor, it has __index__ and
    __float__, which the stream integers and snr take as its value."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return int(self.v)

    def __float__(self):
        return float(self.v)

    def __dlpack_device__(self):
        return (2, 0)


def test_snr_of_any_real_scalar_type():
    """0-d values of every real type are taken, bfloat16 ones included."""
    want = scorekit.corrector_step(X, X, snr=0.25, seed=0)[0]
    jnp = pytest.importorskip("jax.numpy")
    for snr in (np.float32(0.25), np.array(0.25), np.int64(0) + 0.25, jnp.asarray(0.25),
                jnp.asarray(0.25, jnp.bfloat16)):
        np.testing.assert_array_equal(scorekit.corrector_step(X, X, snr=snr, seed=0)[0], want)


def test_zero_d_device_values_as_stream_integers_and_snr():
    np.testing.assert_array_equal(scorekit.normal(4, seed=_OnDevice(7), counter=_OnDevice(2)),
                                  scorekit.normal(4, seed=7, counter=2))
    want = scorekit.corrector_step(X, X, snr=0.2, seed=0)
    np.testing.assert_array_equal(scorekit.corrector_step(X, X, snr=_OnDevice(0.2), seed=0)[0],
                                  want[0])


@pytest.mark.parametrize("make", [list, tuple, lambda v: range(1, 5), "deque", "array", "memory"],
                         ids=["list", "tuple", "range", "deque", "array", "memoryview"])
def test_sequences_of_any_kind_as_per_sample_parameters(make):
    """A per-sample parameter may be any sequence: its values take the call's dtype."""
    import array
    import collections
    values = [1.0, 2.0, 3.0, 4.0]
    seq = {"deque": lambda: collections.deque(values), "array": lambda: array.array("d", values),
           "memory": lambda: memoryview(array.array("d", values))}
    given = seq[make]() if isinstance(make, str) else make(values)
    np.testing.assert_array_equal(scorekit.perturb(X, given, seed=1),
                                  scorekit.perturb(X, values, seed=1))


def _mala_args():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6))
    p = x + 0.1 * rng.standard_normal((4, 6))
    return dict(x=x, score=-x, logp=-0.5 * (x**2).sum(1), proposal=p, score_proposal=-p,
                logp_proposal=-0.5 * (p**2).sum(1), step_size=0.1)


@pytest.mark.parametrize("arg", ["logp", "logp_proposal"])
@pytest.mark.parametrize("value", [np.ones(4, bool), np.ones(4, complex), np.array(["1"] * 4),
                                   [None] * 4])
def test_mala_log_densities_must_be_real(arg, value):
    """A bool mask, complex, string or object log-density would decide the test
    silently: refused by name."""
    kw = _mala_args()
    kw[arg] = value
    with pytest.raises(TypeError, match=f"{arg} must hold real numbers"):
        scorekit.mala_accept(**kw, seed=1)


def test_mala_log_densities_shape_and_integers():
    kw = _mala_args()
    with pytest.raises(ValueError, match=r"logp must have shape \(B,\) = \(4,\), got shape \(\)"):
        scorekit.mala_accept(**{**kw, "logp": 0.0}, seed=1)
    ints = scorekit.mala_accept(**{**kw, "logp": np.zeros(4, np.int64)}, seed=1)
    floats = scorekit.mala_accept(**{**kw, "logp": np.zeros(4)}, seed=1)
    np.testing.assert_array_equal(ints.accepted, floats.accepted)


@pytest.mark.parametrize("arg,value,pattern", [
    ("proposal", np.ones((4, 6), np.float16), "proposal must be a float32 or float64 array"),
    ("proposal", np.float64(1.0), r"proposal must have shape \(B, \.\.\.\)"),
    ("score_proposal", np.ones((4, 3)), r"score_proposal must have shape \(4, 6\)"),
    ("score_proposal", np.ones((4, 6), np.float32), "score_proposal has dtype float32"),
])
def test_mala_accept_names_the_proposal_arrays(arg, value, pattern):
    kw = _mala_args()
    kw[arg] = value
    with pytest.raises((TypeError, ValueError), match=pattern):
        scorekit.mala_accept(**kw, seed=1)


def test_mala_driver_log_densities_must_be_real():
    with pytest.raises(TypeError, match="log_prob_fn must return real numbers"):
        scorekit.mala(lambda x: np.ones(x.shape[0], bool), lambda x: -x, X, 0.1, n_steps=1,
                      seed=0)


def _ode(driver, **kw):
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=1.0)
    score = lambda x, t: -x / (1.0 + t[:, None] ** 2)  # noqa: E731
    if driver == "ode_sample":
        return scorekit.ode_sample(score, sde, (2, 3), seed=0, **kw).x
    return scorekit.log_likelihood(score, sde, np.full((2, 3), 0.5), seed=0, **kw).log_prob


@pytest.mark.parametrize("arg,value,exc", [("rtol", -1.0, ValueError),
                                           ("rtol", float("nan"), ValueError),
                                           ("atol", float("inf"), ValueError),
                                           ("atol", np.array([1e-5, np.inf]), ValueError),
                                           ("atol", True, TypeError), ("atol", "1e-5", TypeError),
                                           ("rtol", [1j], TypeError)])
@pytest.mark.parametrize("driver", ["ode_sample", "log_likelihood"])
def test_ode_tolerances_are_checked(driver, arg, value, exc):
    """An infinite or NaN tolerance would end the solve with any answer: refused by name."""
    with pytest.raises(exc, match=f"{arg} must"):
        _ode(driver, **{arg: value})


@pytest.mark.parametrize("driver,n", [("ode_sample", 6), ("log_likelihood", 8)])
def test_ode_tolerances_per_component(driver, n):
    """Per-component (and 0-d) tolerances go to SciPy as they are: equal ones give the
    scalar's solve."""
    want = _ode(driver, atol=1e-6)
    np.testing.assert_array_equal(_ode(driver, atol=np.full(n, 1e-6)), want)
    np.testing.assert_array_equal(_ode(driver, atol=np.array(1e-6)), want)


def test_ode_non_finite_function_values_name_the_function():
    sde = scorekit.VESDE(sigma_min=0.01, sigma_max=1.0)
    bad = lambda x, t: np.where(np.arange(x.shape[0])[:, None] == 1, np.nan, -x)  # noqa: E731
    good = lambda x, t: -x  # noqa: E731
    with pytest.raises(ValueError, match=r"score_fn returned non-finite values \(sample 1\)"):
        scorekit.ode_sample(bad, sde, (3, 2), seed=0)
    with pytest.raises(ValueError, match=r"score_fn returned non-finite values \(sample 1\)"):
        scorekit.log_likelihood(bad, sde, np.zeros((3, 2)), seed=0)
    with pytest.raises(ValueError, match=r"divergence_fn returned non-finite values \(sample 2\)"):
        scorekit.log_likelihood(good, sde, np.zeros((3, 2)),
                                divergence_fn=lambda x, t: np.array([0.0, 0.0, np.inf]))
    with pytest.raises(TypeError, match="divergence_fn must return real numbers"):
        scorekit.log_likelihood(good, sde, np.zeros((3, 2)),
                                divergence_fn=lambda x, t: np.zeros(3, complex))


def test_karras_sigmas_rho_out_of_range_is_named():
    with pytest.raises(ValueError, match="rho = 0.001 is too small"):
        scorekit.karras_sigmas(5, rho=1e-3)
    with pytest.raises(ValueError, match="rho = 0.01 is too small"):  # sigma_min**100 -> 0
        scorekit.karras_sigmas(5, sigma_min=1e-5, sigma_max=2.0, rho=1e-2)
