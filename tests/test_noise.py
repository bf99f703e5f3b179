"""Counter-based noise against scorekit.reference and against its stated bounds."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import scorekit
from scorekit import _core
from scorekit import reference as ref

ROOT = Path(__file__).resolve().parents[1]
U64 = st.integers(0, 2**64 - 1)
SHAPES = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple) | st.integers(0, 5000)

# |z - z_exact| <= BOUND * max(1, |z_exact|)
BOUND = {np.dtype(np.float32): 2.0**-20, np.dtype(np.float64): 2.0**-48}


def normal_error(z, exact):
    exact = np.asarray(exact, dtype=np.longdouble)
    return np.abs(z.astype(np.longdouble) - exact) / np.maximum(1, np.abs(exact))


@given(shape=SHAPES, seed=U64, counter=U64)
def test_uniform_and_rademacher_bit_exact(shape, seed, counter):
    for dt in (np.float32, np.float64):
        u = scorekit.uniform(shape, seed=seed, counter=counter, dtype=dt)
        assert u.dtype == dt and u.shape == np.empty(shape).shape
        np.testing.assert_array_equal(u, ref.uniform(shape, seed=seed, counter=counter, dtype=dt))
        r = scorekit.rademacher(shape, seed=seed, counter=counter, dtype=dt)
        np.testing.assert_array_equal(r, ref.rademacher(shape, seed=seed, counter=counter, dtype=dt))


@given(shape=SHAPES, seed=U64, counter=U64)
def test_normal_within_bound_of_high_precision(shape, seed, counter):
    for dt in (np.float32, np.float64):
        z = scorekit.normal(shape, seed=seed, counter=counter, dtype=dt)
        exact = ref.normal(shape, seed=seed, counter=counter, dtype=dt, precise=True)
        assert z.dtype == dt
        assert np.all(normal_error(z, exact) <= BOUND[np.dtype(dt)])


def test_normal_bound_on_a_million_draws(dtype):
    z = scorekit.normal(10**6, seed=2024, counter=3, dtype=dtype)
    exact = ref.normal(10**6, seed=2024, counter=3, dtype=dtype, precise=True)
    assert normal_error(z, exact).max() <= BOUND[dtype]


def _float32_words_reference(words):
    """float64 evaluation of the float32 Box-Muller on word pairs (w0, w1), (w2, w3)."""
    u = ((words >> 9).astype(np.float64) + 0.5) * 2.0**-23
    r = np.sqrt(-2 * np.log(u[:, 0::2]))
    a = 2 * np.pi * u[:, 1::2]
    out = np.empty(words.shape, dtype=np.float64)
    out[:, 0::2] = r * np.cos(a)
    out[:, 1::2] = r * np.sin(a)
    return out


def test_float32_transform_exhaustive_over_all_uniforms():
    """Every float32 uniform value as radius and as angle input, against float64."""
    m = np.arange(2**23, dtype=np.uint32) << np.uint32(9)
    fixed = np.uint32(0x9E3779B9)
    # pairs (radius word, angle word): all radii with a fixed angle, all angles with a fixed radius,
    # and the extreme radius (smallest uniform) with every angle.
    words = np.stack([m, np.full_like(m, fixed), np.full_like(m, fixed), m], axis=1)
    words = np.concatenate([words, np.stack([np.zeros_like(m), m, np.full_like(m, 0x1FF), m], axis=1)])
    out = np.empty(words.shape, dtype=np.float32)
    _core.normal_from_words(np.ascontiguousarray(words), out)
    err = normal_error(out.ravel(), _float32_words_reference(words).ravel())
    assert err.max() <= BOUND[np.dtype(np.float32)]


def _float64_words_reference(words):
    w = words.astype(np.uint64)
    ld = np.longdouble

    def unit(a, b):
        m = (a << np.uint64(20)) | (b >> np.uint64(12))
        return (m.astype(ld) + ld(0.5)) * ld(2.0) ** -52

    ua, ub = unit(w[:, 0], w[:, 1]), unit(w[:, 2], w[:, 3])
    two_pi = 8 * np.arctan(ld(1))
    r = np.sqrt(-2 * np.log(ua))
    return np.stack([r * np.cos(two_pi * ub), r * np.sin(two_pi * ub)], axis=1)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60, reason="needs an extended long double")
def test_float64_transform_edges_and_random_words():
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**32, size=(200_000, 4), dtype=np.uint32)
    edges = np.array([0, 1, 0xFFF, 0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF], dtype=np.uint32)
    grid = np.array(np.meshgrid(edges, edges, edges, edges)).reshape(4, -1).T
    quarter = np.array([[0x12345678, 0, q, 0] for q in (0x1FFFFFFF, 0x20000000, 0x3FFFFFFF, 0x40000000,
                                                        0x5FFFFFFF, 0x60000000, 0xDFFFFFFF, 0xE0000000)],
                       dtype=np.uint32)
    words = np.ascontiguousarray(np.concatenate([words, grid.astype(np.uint32), quarter]))
    out = np.empty((len(words), 2), dtype=np.float64)
    _core.normal_from_words(words, out)
    assert normal_error(out, _float64_words_reference(words)).max() <= BOUND[np.dtype(np.float64)]


@pytest.mark.parametrize("offset", [1, 3, 5, 4 * 2**32 - 2, 2**34 + 7, 2**63 + 1])
def test_stream_offsets_use_64_bit_indices(dtype, offset):
    """Elements far past 2**31 (block index above 2**32) come out of the stream layout."""
    n = 37
    for kind in ("normal", "uniform", "rademacher"):
        got = np.empty(n, dtype=dtype)
        getattr(_core, kind)(got, 11, 2**40 + 3, offset)
        if kind == "normal":
            exact = ref.normal(n, seed=11, counter=2**40 + 3, dtype=dtype, offset=offset, precise=True)
            assert normal_error(got, exact).max() <= BOUND[dtype]
        else:
            want = getattr(ref, kind)(n, seed=11, counter=2**40 + 3, dtype=dtype, offset=offset)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("start", [0, 1, 2, 3, 4097, 12345])
def test_any_slice_of_a_stream_regenerates(dtype, start):
    full = scorekit.normal(20000, seed=5, counter=9, dtype=dtype)
    part = np.empty(5000, dtype=dtype)
    _core.normal(part, 5, 9, start)
    np.testing.assert_array_equal(part, full[start:start + 5000])


def test_values_do_not_depend_on_threads(dtype, threads):
    n = 300_001
    results = []
    for t in (1, 2, 3):
        scorekit.set_num_threads(t)
        results.append([f(n, seed=123, counter=4, dtype=dtype)
                        for f in (scorekit.normal, scorekit.uniform, scorekit.rademacher)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_normal_moments_and_ks(dtype):
    n = 10**6
    z = scorekit.normal(n, seed=42, counter=0, dtype=dtype).astype(np.float64)
    # moments within 5 standard errors: var(z) = 1, var(z^2) = 2, var(z^3) = 15, var(z^4) = 96
    assert abs(z.mean()) < 5 * np.sqrt(1 / n)
    assert abs((z**2).mean() - 1) < 5 * np.sqrt(2 / n)
    assert abs((z**3).mean()) < 5 * np.sqrt(15 / n)
    assert abs((z**4).mean() - 3) < 5 * np.sqrt(96 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_uniform_and_rademacher_moments(dtype):
    n = 10**6
    u = scorekit.uniform(n, seed=1, dtype=dtype).astype(np.float64)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    r = scorekit.rademacher(n, seed=1, dtype=dtype)
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) < 5 / np.sqrt(n)


@pytest.mark.parametrize("other", [dict(seed=42, counter=1), dict(seed=43, counter=0),
                                   dict(seed=42 + 2**32, counter=0), dict(seed=42, counter=2**32)])
def test_streams_are_independent(dtype, other):
    """Correlation between neighbouring streams is within 5 standard errors of 0."""
    n = 10**6
    a = scorekit.normal(n, seed=42, counter=0, dtype=dtype).astype(np.float64)
    b = scorekit.normal(n, **other, dtype=dtype).astype(np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(n)
    # and shifted by one element within a stream
    assert abs(np.corrcoef(a[1:], a[:-1])[0, 1]) < 5 / np.sqrt(n)


def test_out_is_filled_and_returned(dtype):
    out = np.full((3, 5), np.nan, dtype=dtype)
    res = scorekit.normal((3, 5), seed=1, out=out)
    assert res is out
    np.testing.assert_array_equal(out, scorekit.normal((3, 5), seed=1, dtype=dtype))


def test_empty_and_zero_d_shapes(dtype):
    assert scorekit.normal((0, 4), seed=0, dtype=dtype).shape == (0, 4)
    z = scorekit.normal((), seed=0, dtype=dtype)
    assert z.shape == () and z == scorekit.normal(1, seed=0, dtype=dtype)[0]


# Random123 kat_vectors, philox4x32 with 10 rounds: counter, key -> output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(_core.philox4x32_10(counter, key)) == expected


@given(counter=st.tuples(*[st.integers(0, 2**32 - 1)] * 4), key=st.tuples(*[st.integers(0, 2**32 - 1)] * 2))
def test_philox_matches_reference(counter, key):
    want = ref.philox4x32_10(np.array(counter, np.uint32), np.array(key, np.uint32))
    assert tuple(_core.philox4x32_10(counter, key)) == tuple(int(w) for w in want)


def test_stream_layout_seed_and_counter_words():
    """Block j of (seed, counter) is Philox of (j lo, j hi, counter lo, counter hi) with key (seed lo, seed hi)."""
    seed, counter, j = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x1_0000_0003
    words = _core.philox4x32_10((j & 0xFFFFFFFF, j >> 32, counter & 0xFFFFFFFF, counter >> 32),
                                (seed & 0xFFFFFFFF, seed >> 32))
    u = np.empty(4, np.float32)
    _core.uniform(u, seed, counter, 4 * j)
    np.testing.assert_array_equal(u, ((np.array(words, np.uint32) >> 9) + 0.5).astype(np.float32) * 2.0**-23)


def test_float32_transforms_on_the_word_bits_equal_their_plain_forms(tmp_path):
    """uniform_f32, the angle's sine and cosine and log_f32's split of its argument are
    worked out on the bits (no integer conversion, no comparisons of floats); tests/native/
    noise_word_forms.cpp tries every float32 uniform (every m = w >> 9) against the plain
    forms, bit for bit, with the build's floating-point flags, log_f64's split against
    fdlibm's comparison with sqrt(2) on doubles of every exponent, and the blocks of a
    KeyedStream (round keys worked out once, as the GPU kernels take them) against the
    Stream's."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    exe = tmp_path / "noise_word_forms"
    subprocess.run([gxx, "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math",
                    f"-I{ROOT / 'cpp/include'}", str(ROOT / "tests/native/noise_word_forms.cpp"),
                    "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout
