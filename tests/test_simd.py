"""Every instruction-set level gives the bits of the portable scalar path.

The vector paths run Philox in two interleaved groups of 8 (AVX2) or 16 (AVX-512)
blocks: 64 / 128 float32 or 32 / 64 float64 elements a step, in tiles of 4096
elements. Sizes, offsets and block counters are chosen around those steps and
around the carry from the low to the high 32-bit word of the block counter.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import scorekit
from scorekit import _core
from scorekit import reference as ref

ORDER = ("scalar", "avx2", "avx512")
SUPPORTED = scorekit.build_info()["simd_supported"]
KINDS = ("normal", "uniform", "rademacher")
SEED, COUNTER = 2**63 + 5, 2**32 + 17  # both words of the key and of the stream counter in use
GROUP_SIZES = [63, 64, 65, 127, 128, 129, 255, 256, 257]


def clamp(level):
    """The level set_simd(level) gives on this machine."""
    return ORDER[min(ORDER.index(level), ORDER.index(SUPPORTED))]


@pytest.fixture
def restore_simd():
    before = scorekit.build_info()["simd"]
    yield
    _core.set_simd(before)


@pytest.fixture(params=[pytest.param(lv, marks=pytest.mark.skipif(
    clamp(lv) != lv, reason=f"CPU or build lacks {lv} (simd_supported is {SUPPORTED})"))
    for lv in ORDER[1:]])
def level(request, restore_simd):
    """A vector level to compare with "scalar"; the starting level is restored afterwards."""
    return request.param


def at(level, fn):
    assert _core.set_simd(level) == level
    return fn()


def assert_bits(got, want):
    """Same type, shape, dtype and bytes (tuples element by element; floats by ==)."""
    assert type(got) is type(want)
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_bits(g, w)
    elif isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        np.testing.assert_array_equal(got, want)
        assert got.tobytes() == want.tobytes()  # also the sign of zeros
    else:
        assert got == want


def same_as_scalar(level, fn):
    want = at("scalar", fn)
    got = at(level, fn)
    assert_bits(got, want)
    return got


def core_fill(kind, n, dtype, offset):
    out = np.empty(n, dtype=dtype)
    getattr(_core, kind)(out, SEED, COUNTER, offset)
    return out


def api(kind, shape, dtype=None, offset=0, **kw):
    return getattr(scorekit, kind)(shape, dtype=dtype, **stream(offset, **kw))


def unaligned_copy(a):
    """A C-contiguous copy of a in a NaN buffer (out.base) from 1 (or a few) elements in: the
    data is not 32-byte aligned, and 300 NaN after it catch vector stores past its end."""
    buf = np.full(a.size + 308, np.nan, a.dtype)
    i = next(i for i in range(1, 8) if (buf.ctypes.data + i * buf.itemsize) % 32)
    out = buf[i:i + a.size].reshape(a.shape)
    out[...] = a
    return out


def stream(offset, **extra):
    return {"seed": SEED, "counter": COUNTER, "offset": offset, **extra}


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 31, 32, 33, *GROUP_SIZES, 4095, 4096, 4097, 100_003])
@pytest.mark.parametrize("kind", KINDS)
def test_noise_ragged_sizes(kind, n, dtype, level):
    same_as_scalar(level, lambda: api(kind, n, dtype))


@pytest.mark.parametrize("offset", [*range(1, 8), 17, 33, 67, 133, 2**40 + 3])
def test_noise_offsets(offset, dtype, level):
    same_as_scalar(level, lambda: tuple(core_fill(k, n, dtype, offset)
                                        for k in KINDS for n in GROUP_SIZES))


@pytest.mark.parametrize("shape, offset", [((3, 21), 5), ((2, 3, 11), 7), ((4, 65), 1),
                                           ((1, 129), 3), ((2, 127), 2**33 + 1)])
def test_noise_row_offsets(shape, offset, dtype, level):
    same_as_scalar(level, lambda: tuple(api(k, shape, dtype, offset) for k in KINDS))


@pytest.mark.parametrize("n", [1, 7, 63, 65, 129, 257, 4097])
@pytest.mark.parametrize("kind", KINDS)
def test_noise_unaligned_output(kind, n, dtype, level):
    want = at("scalar", lambda: core_fill(kind, n, dtype, 3))
    _core.set_simd(level)
    out = unaligned_copy(np.zeros(n, dtype))
    getattr(_core, kind)(out, SEED, COUNTER, 3)
    assert_bits(out, want)
    assert np.isnan(out.base).sum() == out.base.size - n, "wrote outside out"
    out = unaligned_copy(np.zeros(n, dtype))
    assert api(kind, n, offset=3, out=out) is out
    assert_bits(out, want)


@pytest.mark.parametrize("block", [2**32, 3 * 2**32, 2**40 + 2**32])
@pytest.mark.parametrize("before", [0, 1, 5, 31, 64, 127, 129])
def test_noise_block_counter_carry(block, before, dtype, level):
    """Block j = offset // 4 (float32) or offset // 2 (float64) crosses a multiple of 2**32."""
    offset = (4 if dtype == np.float32 else 2) * block - before
    n = 300
    z, u, r = same_as_scalar(level, lambda: tuple(core_fill(k, n, dtype, offset) for k in KINDS))
    kw = stream(offset, dtype=dtype)
    np.testing.assert_array_equal(u, ref.uniform(n, **kw))
    np.testing.assert_array_equal(r, ref.rademacher(n, **kw))
    exact = ref.normal(n, precise=True, **kw)
    tol = 2.0**-20 if dtype == np.float32 else 2.0**-48
    assert np.all(np.abs(z - exact) <= tol * np.maximum(1, np.abs(exact)))


def _ssm(kind, vr, reduction, grad):
    return lambda x, s, p, q, kw: scorekit.ssm_loss(
        s, np.stack([s, x], axis=1), kind=kind, variance_reduction=vr, reduction=reduction,
        return_grad=grad, **kw)


def _dsm(reduction, grad, weight="sigma2"):  # weight="q": the per-sample array q
    return lambda x, s, p, q, kw: scorekit.dsm_loss(s, p, weight=q if weight == "q" else weight,
                                                    reduction=reduction, return_grad=grad, **kw)


def _probes(kind, k):
    return lambda x, s, p, q, kw: scorekit.probes(x.shape, kind=kind, dtype=x.dtype,
                                                  num_probes=k, **kw)


# Each takes samples x, scores s, per-sample arrays p and q (in [0.1, 2)) and seed / counter /
# offset keywords.
KERNELS = {
    "perturb": lambda x, s, p, q, kw: scorekit.perturb(x, p, scale=q, **kw),
    "langevin_step": lambda x, s, p, q, kw: scorekit.langevin_step(x, s, p, **kw),
    "noisy_affine_step": lambda x, s, p, q, kw: scorekit.noisy_affine_step(x, s, q, p, p * q,
                                                                           **kw),
    "corrector_step": lambda x, s, p, q, kw: scorekit.corrector_step(x, s, snr=0.16, alpha=q,
                                                                     per_sample=True, **kw),
    "mala_accept": lambda x, s, p, q, kw: scorekit.mala_accept(
        x, s, np.zeros(len(x)), x + s, s, np.linspace(-2, 0.5, len(x)), p, **kw),
    "dsm_none": _dsm("none", True, weight="q"),
    "dsm_none_nograd": _dsm("none", False),
    "dsm_mean": _dsm("mean", True, weight="q"),
    "dsm_mean_nograd": _dsm("mean", False, weight="none"),
    "dsm_sum": _dsm("sum", True),
    "probes_rademacher": _probes("rademacher", None),
    "probes_gaussian": _probes("gaussian", None),
    "probes_sphere": _probes("sphere", None),
    "probes_sphere_k3": _probes("sphere", 3),
    "ssm_gaussian": _ssm("gaussian", False, "none", True),
    "ssm_rademacher_vr": _ssm("rademacher", True, "mean", True),
    "ssm_sphere": _ssm("sphere", False, "mean", False),
    "ssm_sphere_vr": _ssm("sphere", True, "none", False),
}


def kernel_args(shape, dtype):
    B = shape[0]
    rng = np.random.default_rng(1)
    x, s = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    p, q = (rng.uniform(0.1, 2, B).astype(dtype) for _ in range(2))
    return x, s, p, q


def carry_offset(shape, dtype):
    """A sample offset whose second sample holds the element where block 2**32 starts."""
    return (4 if dtype == np.float32 else 2) * 2**32 // int(np.prod(shape[1:])) - 1


@pytest.mark.parametrize("offset", [0, 3, "carry"])
@pytest.mark.parametrize("shape", [(5, 21), (3, 2, 7), (2, 4097), (2, 3 * 4096 + 5), (7, 1)])
@pytest.mark.parametrize("name", KERNELS)
def test_kernels(name, shape, offset, dtype, level):
    x, s, p, q = kernel_args(shape, dtype)
    kw = stream(carry_offset(shape, dtype) if offset == "carry" else offset)
    same_as_scalar(level, lambda: KERNELS[name](x, s, p, q, kw))


@pytest.mark.parametrize("shape", [(4, 37), (2, 4097)])
@pytest.mark.parametrize("name", KERNELS)
def test_kernels_strided_and_unaligned_inputs(name, shape, dtype, level):
    x, s, p, q = kernel_args(shape, dtype)
    kw = stream(5)
    want = at("scalar", lambda: KERNELS[name](x, s, p, q, kw))
    _core.set_simd(level)
    for view in (lambda a: np.repeat(a, 2, axis=-1)[..., 1::2], unaligned_copy):
        assert_bits(KERNELS[name](view(x), view(s), p, q, kw), want)


@pytest.mark.parametrize("name", ["perturb", "langevin_step", "noisy_affine_step",
                                  "corrector_step", "probes_gaussian", "probes_sphere"])
def test_kernels_unaligned_output(name, dtype, level):
    x, s, p, q = kernel_args((3, 133), dtype)
    want = at("scalar", lambda: KERNELS[name](x, s, p, q, stream(1)))
    _core.set_simd(level)
    out = unaligned_copy(np.zeros_like(x))
    got = KERNELS[name](x, s, p, q, stream(1, out=out))
    assert_bits(got, want)
    assert (got[0] if isinstance(got, tuple) else got) is out
    assert np.isnan(out.base).sum() == out.base.size - x.size, "wrote outside out"


def test_thread_count_does_not_change_bits(dtype, level, threads):
    """Several tiles per call (rows shorter and longer than a tile), on 1 and 2 threads."""
    args = [kernel_args(shape, dtype) for shape in [(300, 77), (3, 2 * 4096 + 77)]]

    def run():
        noise = tuple(core_fill(k, 100_003, dtype, 5) for k in KINDS)
        return noise + tuple(fn(*a, stream(9)) for fn in KERNELS.values() for a in args)

    scorekit.set_num_threads(1)
    want = at("scalar", run)
    for n in (1, 2):
        scorekit.set_num_threads(n)
        assert_bits(at(level, run), want)


@pytest.mark.parametrize("value", [*ORDER, "sse9", "AVX2", "", None])
def test_environment_variable(value):
    env = {k: v for k, v in os.environ.items() if k != "SCOREKIT_SIMD"}
    if value is not None:
        env["SCOREKIT_SIMD"] = value
    code = "import scorekit; i = scorekit.build_info(); print(i['simd'], i['simd_supported'])"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    # a level is clamped to the best supported; unset or unknown means the best
    expected = clamp(value) if value in ORDER else SUPPORTED
    assert res.stdout.split() == [expected, SUPPORTED]


@pytest.mark.parametrize("wanted", ORDER)
def test_set_simd_clamps_to_supported(wanted, restore_simd):
    assert _core.set_simd(wanted) == clamp(wanted)
    assert scorekit.build_info()["simd"] == clamp(wanted)


@pytest.mark.parametrize("name", ["sse9", "AVX2", ""])
def test_unknown_level_is_rejected(name, restore_simd):
    before = scorekit.build_info()["simd"]
    with pytest.raises(ValueError, match="simd level must be") as err:
        _core.set_simd(name)
    assert all(f"'{lv}'" in str(err.value) for lv in (*ORDER, name))
    assert scorekit.build_info()["simd"] == before
