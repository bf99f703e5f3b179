"""Tests of the pure-NumPy reference, ``scorekit.reference``."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scorekit import reference as ref

MASK32 = 0xFFFFFFFF
HYPOTHESIS = settings(database=None, deadline=None, max_examples=60)
DTYPES = [np.float32, np.float64]
HAS_WIDE_LONGDOUBLE = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps

# Random123 tests/kat_vectors, philox4x32: (rounds, counter, key, expected).
KAT = [
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
    (7, (MASK32,) * 4, (MASK32,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (
        7,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
    ),
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (MASK32,) * 4, (MASK32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        10,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def philox_scalar(counter, key, rounds=10):
    """Philox4x32 on Python ints, written directly from the round definition."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
    return c0, c1, c2, c3


def block_scalar(seed, counter, j):
    """Words of stream block ``j`` built by hand from the layout rules."""
    return philox_scalar(
        (j & MASK32, j >> 32, counter & MASK32, counter >> 32), (seed & MASK32, seed >> 32)
    )


def word_scalar(seed, counter, i):
    return block_scalar(seed, counter, i // 4)[i % 4]


def unit32_scalar(w):
    return ((w >> 9) + 0.5) * 2.0**-23


def unit64_scalar(a, b):
    return (((a << 20) | (b >> 12)) + 0.5) * 2.0**-52


# ---------------------------------------------------------------- Philox


@pytest.mark.parametrize("rounds, counter, key, expected", KAT)
def test_philox_known_answers(rounds, counter, key, expected):
    out = ref.philox4x32_10(
        np.array(counter, dtype=np.uint32), np.array(key, dtype=np.uint32), rounds=rounds
    )
    assert out.dtype == np.uint32
    assert out.shape == (4,)
    assert tuple(int(v) for v in out) == expected
    assert philox_scalar(counter, key, rounds) == expected


def test_philox_default_is_ten_rounds():
    for rounds, counter, key, expected in KAT:
        if rounds == 10:
            out = ref.philox4x32_10(np.array(counter, np.uint32), np.array(key, np.uint32))
            assert tuple(int(v) for v in out) == expected


def test_philox_vectorised_and_broadcast():
    ten = [k for k in KAT if k[0] == 10]
    counters = np.array([k[1] for k in ten], dtype=np.uint32)
    keys = np.array([k[2] for k in ten], dtype=np.uint32)
    expected = np.array([k[3] for k in ten], dtype=np.uint32)
    np.testing.assert_array_equal(ref.philox4x32_10(counters, keys), expected)

    rows = ref.philox4x32_10(counters[:, None, :], keys[None, :, :])
    assert rows.shape == (3, 3, 4)
    for a in range(3):
        for b in range(3):
            want = philox_scalar(tuple(map(int, counters[a])), tuple(map(int, keys[b])))
            assert tuple(int(v) for v in rows[a, b]) == want

    one_key = ref.philox4x32_10(counters, keys[2])
    np.testing.assert_array_equal(one_key[2], expected[2])


@HYPOTHESIS
@given(
    st.lists(st.integers(0, MASK32), min_size=4, max_size=4),
    st.lists(st.integers(0, MASK32), min_size=2, max_size=2),
)
def test_philox_matches_scalar_definition(counter, key):
    out = ref.philox4x32_10(np.array(counter, np.uint32), np.array(key, np.uint32))
    assert tuple(int(v) for v in out) == philox_scalar(counter, key)


@pytest.mark.parametrize(
    "seed, counter, first_block",
    [
        (0, 0, 0),
        (12345, 7, 0),
        (0x0123456789ABCDEF, 0xFEDCBA9876543210, 2**32 - 3),
        (2**64 - 1, 2**64 - 1, 2**40 + 17),
        (2**32, 2**32, 5 * 2**32 + 1),
    ],
)
def test_philox_blocks_layout(seed, counter, first_block):
    n = 7
    blocks = ref.philox_blocks(seed, counter, first_block, n)
    assert blocks.shape == (n, 4) and blocks.dtype == np.uint32
    j = first_block + np.arange(n, dtype=np.uint64)
    ctr = np.stack(
        [
            j & np.uint64(MASK32),
            j >> np.uint64(32),
            np.full(n, counter & MASK32, np.uint64),
            np.full(n, counter >> 32, np.uint64),
        ],
        axis=-1,
    ).astype(np.uint32)
    key = np.array([seed & MASK32, seed >> 32], dtype=np.uint32)
    np.testing.assert_array_equal(blocks, ref.philox4x32_10(ctr, key))
    for r in range(n):
        assert tuple(int(v) for v in blocks[r]) == block_scalar(seed, counter, first_block + r)


def test_philox_blocks_high_index_word_used():
    low = ref.philox_blocks(9, 0, 5, 1)
    high = ref.philox_blocks(9, 0, 5 + 2**32, 1)
    assert not np.array_equal(low, high)
    assert (high[0, 0] != 0) or (high[0, 1] != 0)


def test_philox_blocks_wrap_modulo_2_64():
    blocks = ref.philox_blocks(3, 4, 2**64 - 2, 4)
    for r, j in enumerate([2**64 - 2, 2**64 - 1, 0, 1]):
        assert tuple(int(v) for v in blocks[r]) == block_scalar(3, 4, j)


def test_seed_and_counter_use_all_64_bits():
    base = ref.uniform(64, seed=1, counter=1)
    assert not np.array_equal(base, ref.uniform(64, seed=1 + 2**32, counter=1))
    assert not np.array_equal(base, ref.uniform(64, seed=1, counter=1 + 2**32))
    assert not np.array_equal(base, ref.uniform(64, seed=1, counter=2))
    np.testing.assert_array_equal(base, ref.uniform(64, seed=1, counter=1))


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_seed_and_counter_range_checked(bad):
    with pytest.raises(ValueError):
        ref.uniform(4, seed=bad)
    with pytest.raises(ValueError):
        ref.uniform(4, seed=0, counter=bad)


# --------------------------------------------------------------- uniform


def test_uniform_float32_exact_and_open_interval():
    n = 1 << 18
    u = ref.uniform(n, seed=2024, counter=3)
    assert u.dtype == np.float32 and u.shape == (n,)
    assert u.min() > 0 and u.max() < 1
    scaled = u.astype(np.float64) * 2**23 - 0.5
    np.testing.assert_array_equal(scaled, np.floor(scaled))
    words = ref.philox_blocks(2024, 3, 0, n // 4).reshape(-1)
    np.testing.assert_array_equal(scaled.astype(np.uint32), words >> 9)


def test_uniform_float32_extremes():
    assert unit32_scalar(0) == 2.0**-24
    assert unit32_scalar(MASK32) == 1 - 2.0**-24
    assert np.float32(unit32_scalar(MASK32)) < 1


def test_uniform_float64_uses_52_bits():
    n = 1 << 16
    u = ref.uniform(n, seed=77, counter=5, dtype=np.float64)
    assert u.dtype == np.float64
    assert u.min() > 0 and u.max() < 1
    scaled = u * 2**52 - 0.5
    np.testing.assert_array_equal(scaled, np.floor(scaled))
    v = scaled.astype(np.uint64)
    words = ref.philox_blocks(77, 5, 0, n // 2).reshape(-1).astype(np.uint64)
    a, b = words[0::2], words[1::2]
    np.testing.assert_array_equal(v, (a << np.uint64(20)) | (b >> np.uint64(12)))
    for bit in range(52):
        ones = np.count_nonzero((v >> np.uint64(bit)) & np.uint64(1))
        assert 0.45 * n < ones < 0.55 * n, bit
    assert unit64_scalar(0, 0) == 2.0**-53
    assert unit64_scalar(MASK32, MASK32) == 1 - 2.0**-53


def test_uniform_matches_scalar_layout():
    seed, counter = 0xDEADBEEFCAFEF00D, 0x1234
    u32 = ref.uniform(11, seed=seed, counter=counter)
    for i in range(11):
        assert float(u32[i]) == unit32_scalar(word_scalar(seed, counter, i))
    u64 = ref.uniform(11, seed=seed, counter=counter, dtype=np.float64)
    for i in range(11):
        w = block_scalar(seed, counter, i // 2)
        a, b = (w[0], w[1]) if i % 2 == 0 else (w[2], w[3])
        assert float(u64[i]) == unit64_scalar(a, b)


def test_shapes_are_c_order_views_of_the_stream():
    for fn in (ref.uniform, ref.normal, ref.rademacher):
        for dt in DTYPES:
            flat = fn(24, seed=4, counter=2, dtype=dt)
            cube = fn((2, 3, 4), seed=4, counter=2, dtype=dt)
            assert cube.shape == (2, 3, 4) and cube.dtype == dt
            np.testing.assert_array_equal(cube.ravel(), flat)
            assert fn(0, seed=4, dtype=dt).shape == (0,)


def test_invalid_dtype_rejected():
    with pytest.raises(ValueError):
        ref.uniform(3, seed=0, dtype=np.float16)


# ------------------------------------------------------------ rademacher


@pytest.mark.parametrize("dtype", DTYPES)
def test_rademacher_values_and_bit_rule(dtype):
    n = 4096 + 3
    r = ref.rademacher(n, seed=11, counter=1, dtype=dtype)
    assert r.dtype == dtype
    assert set(np.unique(r).tolist()) == {-1.0, 1.0}
    words = ref.philox_blocks(11, 1, 0, -(-n // 4)).reshape(-1)[:n]
    np.testing.assert_array_equal(r, np.where(words < 2**31, 1.0, -1.0))
    for i in (0, 1, 2, 3, 4, n - 1):
        assert r[i] == (1.0 if word_scalar(11, 1, i) >> 31 == 0 else -1.0)


def test_rademacher_same_words_for_both_dtypes():
    a = ref.rademacher(1000, seed=5, offset=9)
    b = ref.rademacher(1000, seed=5, offset=9, dtype=np.float64)
    np.testing.assert_array_equal(a.astype(np.float64), b)


def test_rademacher_balanced():
    n = 1_000_000
    r = ref.rademacher(n, seed=8)
    assert abs(r.astype(np.float64).mean()) < 5 / math.sqrt(n)


# ----------------------------------------------------------------- normal


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_precise_types_and_rounding(dtype):
    wide = np.float64 if dtype == np.float32 else np.longdouble
    p = ref.normal((5, 7), seed=3, counter=9, dtype=dtype, precise=True)
    z = ref.normal((5, 7), seed=3, counter=9, dtype=dtype)
    assert p.dtype == wide and z.dtype == dtype
    np.testing.assert_array_equal(z, p.astype(dtype))


def test_normal_float32_layout_matches_box_muller():
    seed, counter = 99, 4
    z = ref.normal(10, seed=seed, counter=counter, precise=True)
    for i in range(10):
        pair = i // 2
        ua = unit32_scalar(word_scalar(seed, counter, 2 * pair))
        ub = unit32_scalar(word_scalar(seed, counter, 2 * pair + 1))
        trig = math.cos if i % 2 == 0 else math.sin
        want = math.sqrt(-2 * math.log(ua)) * trig(2 * math.pi * ub)
        assert z[i] == pytest.approx(want, rel=1e-13, abs=1e-13)


def test_normal_float64_layout_matches_box_muller():
    seed, counter = 99, 4
    z = ref.normal(10, seed=seed, counter=counter, dtype=np.float64, precise=True)
    for i in range(10):
        w = block_scalar(seed, counter, i // 2)
        ua, ub = unit64_scalar(w[0], w[1]), unit64_scalar(w[2], w[3])
        trig = math.cos if i % 2 == 0 else math.sin
        want = math.sqrt(-2 * math.log(ua)) * trig(2 * math.pi * ub)
        assert float(z[i]) == pytest.approx(want, rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_pairs_share_radius_and_angle(dtype):
    n = 1 << 14
    z = ref.normal(n, seed=21, dtype=dtype, precise=True)
    u = ref.uniform(n, seed=21, dtype=dtype).astype(z.dtype)
    ua, ub = u[0::2], u[1::2]
    eps = np.finfo(z.dtype).eps
    radius2 = z[0::2] ** 2 + z[1::2] ** 2
    np.testing.assert_allclose(radius2, -2 * np.log(ua), rtol=64 * eps, atol=0)
    angle = np.arctan2(z[1::2], z[0::2]) / (2 * np.arccos(z.dtype.type(-1)))
    turns = np.mod(angle - ub + 0.5, 1) - 0.5
    assert np.all(np.abs(turns) <= 16 * eps * (1 + 1 / np.sqrt(radius2)))


@pytest.mark.skipif(not HAS_WIDE_LONGDOUBLE, reason="np.longdouble is float64 here")
def test_normal_float64_precise_beyond_float64():
    z = ref.normal(1 << 12, seed=6, dtype=np.float64, precise=True)
    residual = z - z.astype(np.float64).astype(np.longdouble)
    ulp = np.spacing(np.abs(z.astype(np.float64)))
    assert np.count_nonzero(residual) > 0.9 * z.size
    assert np.all(np.abs(residual) <= ulp.astype(np.longdouble) / 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_statistics(dtype):
    n = 1_000_000
    z = ref.normal(n, seed=20240601, counter=1, dtype=dtype).astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert abs(stats.skew(z)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_uniform_statistics(dtype):
    n = 1_000_000
    u = ref.uniform(n, seed=31337, dtype=dtype).astype(np.float64)
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_normal_streams_independent_across_counters():
    a = ref.normal(100_000, seed=1, counter=0, dtype=np.float64)
    b = ref.normal(100_000, seed=1, counter=1, dtype=np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(a.size)


# ---------------------------------------------------------------- offsets


def _fns():
    return [
        ("uniform", ref.uniform, {}),
        ("normal", ref.normal, {}),
        ("normal_precise", ref.normal, {"precise": True}),
        ("rademacher", ref.rademacher, {}),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, fn, extra", _fns())
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 6, 7, 13, 64, 1001])
def test_offset_matches_slice_of_larger_call(name, fn, extra, dtype, offset):
    big = fn(1100, seed=42, counter=3, dtype=dtype, **extra)
    for length in (1, 2, 3, 4, 9, 50):
        part = fn(length, seed=42, counter=3, dtype=dtype, offset=offset, **extra)
        np.testing.assert_array_equal(part, big[offset : offset + length])
    part = fn((3, 5), seed=42, counter=3, dtype=dtype, offset=offset, **extra)
    np.testing.assert_array_equal(part.ravel(), big[offset : offset + 15])


@HYPOTHESIS
@given(
    offset=st.integers(0, 2**62),
    back=st.integers(0, 9),
    length=st.integers(0, 40),
    dtype=st.sampled_from(DTYPES),
    which=st.sampled_from(["uniform", "normal", "rademacher"]),
)
def test_offset_consistency_anywhere(offset, back, length, dtype, which):
    fn = getattr(ref, which)
    start = max(0, offset - back)
    big = fn(length + offset - start, seed=17, counter=2**63 + 1, dtype=dtype, offset=start)
    part = fn(length, seed=17, counter=2**63 + 1, dtype=dtype, offset=offset)
    np.testing.assert_array_equal(part, big[offset - start :])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0, 3, 65535])
def test_results_independent_of_slicing(monkeypatch, dtype, offset):
    n = 2 * (1 << 16) + 5
    full = {name: fn(n, seed=8, dtype=dtype, offset=offset, **kw) for name, fn, kw in _fns()}
    monkeypatch.setattr(ref, "_SLICE", 7)
    for start, length in [(0, 30), ((1 << 16) - 13, 40), (n - 20, 20)]:
        for name, fn, kw in _fns():
            part = fn(length, seed=8, dtype=dtype, offset=offset + start, **kw)
            np.testing.assert_array_equal(part, full[name][start : start + length])


def test_float32_offset_beyond_2_32_blocks():
    seed, counter = 0xA5A5A5A5_5A5A5A5A, 2**40 + 3
    j = 2**32 + 6
    offset = 4 * j + 1
    u = ref.uniform(6, seed=seed, counter=counter, offset=offset)
    r = ref.rademacher(6, seed=seed, counter=counter, offset=offset)
    z = ref.normal(6, seed=seed, counter=counter, offset=offset, precise=True)
    words = [word_scalar(seed, counter, offset + k) for k in range(6)]
    assert [float(v) for v in u] == [unit32_scalar(w) for w in words]
    assert [float(v) for v in r] == [1.0 if w >> 31 == 0 else -1.0 for w in words]
    ctr = np.array([j & MASK32, j >> 32, counter & MASK32, counter >> 32], dtype=np.uint32)
    key = np.array([seed & MASK32, seed >> 32], dtype=np.uint32)
    w0, w1, w2, w3 = (int(v) for v in ref.philox4x32_10(ctr, key))
    assert float(u[0]) == unit32_scalar(w1)
    assert float(u[2]) == unit32_scalar(w3)
    radius = math.sqrt(-2 * math.log(unit32_scalar(w2)))
    angle = 2 * math.pi * unit32_scalar(w3)
    assert z[1] == pytest.approx(radius * math.cos(angle), rel=1e-13)
    assert z[2] == pytest.approx(radius * math.sin(angle), rel=1e-13)


def test_float64_offset_beyond_2_32_blocks_odd_start():
    seed, counter = 2**63 + 12345, 7
    j = 2**33 + 5
    offset = 2 * j + 1
    u = ref.uniform(3, seed=seed, counter=counter, dtype=np.float64, offset=offset)
    z = ref.normal(3, seed=seed, counter=counter, dtype=np.float64, offset=offset, precise=True)
    ctr = np.array([j & MASK32, j >> 32, counter & MASK32, counter >> 32], dtype=np.uint32)
    key = np.array([seed & MASK32, seed >> 32], dtype=np.uint32)
    w = [int(v) for v in ref.philox4x32_10(ctr, key)]
    nxt = block_scalar(seed, counter, j + 1)
    assert float(u[0]) == unit64_scalar(w[2], w[3])
    assert float(u[1]) == unit64_scalar(nxt[0], nxt[1])
    assert float(u[2]) == unit64_scalar(nxt[2], nxt[3])
    ua, ub = unit64_scalar(w[0], w[1]), unit64_scalar(w[2], w[3])
    assert float(z[0]) == pytest.approx(
        math.sqrt(-2 * math.log(ua)) * math.sin(2 * math.pi * ub), rel=1e-13, abs=1e-13
    )
    ua, ub = unit64_scalar(nxt[0], nxt[1]), unit64_scalar(nxt[2], nxt[3])
    assert float(z[1]) == pytest.approx(
        math.sqrt(-2 * math.log(ua)) * math.cos(2 * math.pi * ub), rel=1e-13, abs=1e-13
    )


def test_negative_offset_rejected():
    with pytest.raises(ValueError):
        ref.uniform(3, seed=0, offset=-1)


# ---------------------------------------------------------------- perturb


@pytest.mark.parametrize("dtype", DTYPES)
def test_perturb_formula(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    sigma = np.array([0.1, 0.5, 1.0, 2.0])
    scale = np.array([1.0, 0.9, 0.5, 0.25])
    z = ref.normal(x.shape, seed=5, counter=6, dtype=dtype, precise=True)
    out = ref.perturb(x, sigma, seed=5, counter=6, scale=scale)
    assert out.dtype == np.float64 and out.shape == x.shape
    want = scale[:, None, None] * x.astype(z.dtype) + sigma[:, None, None] * z
    np.testing.assert_array_equal(out, want.astype(np.float64))
    plain = ref.perturb(x, 0.3, seed=5, counter=6)
    np.testing.assert_allclose(plain, x + 0.3 * z.astype(np.float64), rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(ref.perturb(x, 0.0, seed=5), x.astype(np.float64))


def test_perturb_one_dimensional_batch():
    x = np.linspace(-1, 1, 6)
    sigma = np.arange(1, 7) / 10
    z = ref.normal(6, seed=1, dtype=np.float64, precise=True)
    np.testing.assert_array_equal(
        ref.perturb(x, sigma, seed=1), (x + sigma.astype(z.dtype) * z).astype(np.float64)
    )


# --------------------------------------------------------------- dsm_loss


def _dsm_case(dtype=np.float64, shape=(3, 2, 4)):
    rng = np.random.default_rng(1)
    score = rng.standard_normal(shape).astype(dtype)
    sigma = np.array([0.3, 1.0, 2.5])[: shape[0]]
    return score, sigma


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [0.7, np.array([0.2, 1.0, 3.0, 0.5])])
def test_dsm_optimal_score_gives_zero_loss(dtype, sigma):
    shape = (4, 3, 8)
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (4,))[:, None, None]
    z = ref.normal(shape, seed=10, counter=2, dtype=dtype, precise=True)

    z64 = z.astype(np.float64)
    loss, grad = ref.dsm_loss(-z64 / sig, sigma, noise=z64)
    assert loss == 0.0
    np.testing.assert_array_equal(grad, 0.0)

    score = (-z / sig.astype(z.dtype)).astype(dtype)
    loss, grad = ref.dsm_loss(score, sigma, seed=10, counter=2)
    baseline, _ = ref.dsm_loss(np.zeros(shape, dtype), sigma, seed=10, counter=2)
    eps = np.finfo(dtype).eps
    assert 0 <= loss <= eps**2 * baseline
    assert np.abs(grad).max() <= eps * np.abs(z64 * sig).max()
    other, _ = ref.dsm_loss(score, sigma, seed=10, counter=3)
    assert other > 0.1 * baseline


@pytest.mark.parametrize("dtype", DTYPES)
def test_dsm_seed_path_equals_explicit_noise(dtype):
    score, sigma = _dsm_case(dtype)
    z = ref.normal(score.shape, seed=123, counter=4, dtype=dtype, precise=True)
    for reduction in ("mean", "sum", "none"):
        a = ref.dsm_loss(score, sigma, seed=123, counter=4, reduction=reduction)
        b = ref.dsm_loss(score, sigma, noise=z, reduction=reduction)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_dsm_explicit_formula():
    score, sigma = _dsm_case()
    z = np.random.default_rng(2).standard_normal(score.shape)
    loss, grad = ref.dsm_loss(score, sigma, noise=z, reduction="none")
    s = sigma[:, None, None]
    resid = score + z / s
    np.testing.assert_allclose(loss, 0.5 * sigma**2 * (resid**2).sum(axis=(1, 2)), rtol=1e-14)
    np.testing.assert_allclose(grad, s**2 * resid, rtol=1e-14)
    assert loss.dtype == np.float64 and grad.dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_dsm_reductions_consistent(dtype):
    score, sigma = _dsm_case(dtype)
    kw = dict(seed=7, counter=1)
    mean, g_mean = ref.dsm_loss(score, sigma, reduction="mean", **kw)
    total, g_sum = ref.dsm_loss(score, sigma, reduction="sum", **kw)
    each, g_none = ref.dsm_loss(score, sigma, reduction="none", **kw)
    assert isinstance(mean, float) and isinstance(total, float)
    assert each.shape == (3,) and each.dtype == np.float64
    assert mean == pytest.approx(total / 3, rel=1e-14)
    assert mean == pytest.approx(each.mean(), rel=1e-14)
    assert total == pytest.approx(each.sum(), rel=1e-14)
    np.testing.assert_allclose(g_mean, g_sum / 3, rtol=1e-14)
    np.testing.assert_array_equal(g_sum, g_none)
    assert ref.dsm_loss(score, sigma, return_grad=False, **kw) == mean


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", ["sigma2", "none", 0.5, np.array([1.0, 2.0, 0.25])])
def test_dsm_gradient_matches_finite_differences(reduction, weight):
    score, sigma = _dsm_case()
    kw = dict(seed=99, counter=5, weight=weight, reduction=reduction)
    loss, grad = ref.dsm_loss(score, sigma, **kw)
    h = 1e-5
    for idx in np.ndindex(score.shape):
        up, down = score.copy(), score.copy()
        up[idx] += h
        down[idx] -= h
        f_up = ref.dsm_loss(up, sigma, return_grad=False, **kw)
        f_down = ref.dsm_loss(down, sigma, return_grad=False, **kw)
        fd = (np.asarray(f_up) - np.asarray(f_down)) / (2 * h)
        if reduction == "none":
            b = idx[0]
            assert fd[b] == pytest.approx(grad[idx], rel=1e-6, abs=1e-8)
            others = np.delete(fd, b)
            np.testing.assert_allclose(others, 0, atol=1e-8)
        else:
            assert fd == pytest.approx(grad[idx], rel=1e-6, abs=1e-8)


def test_dsm_weights():
    score, sigma = _dsm_case()
    kw = dict(seed=3, reduction="none")
    sig2, _ = ref.dsm_loss(score, sigma, weight="sigma2", **kw)
    arr, _ = ref.dsm_loss(score, sigma, weight=sigma**2, **kw)
    none, _ = ref.dsm_loss(score, sigma, weight="none", **kw)
    one, _ = ref.dsm_loss(score, sigma, weight=1.0, **kw)
    np.testing.assert_allclose(sig2, arr, rtol=1e-15)
    np.testing.assert_array_equal(none, one)
    np.testing.assert_allclose(sig2, sigma**2 * none, rtol=1e-14)
    with pytest.raises(ValueError):
        ref.dsm_loss(score, sigma, weight="bogus", **kw)


def test_dsm_zero_score_expectation():
    batch, dim = 2000, 64
    score = np.zeros((batch, dim))
    sigma = np.linspace(0.1, 5, batch)
    per_sample, _ = ref.dsm_loss(score, sigma, seed=2, reduction="none")
    np.testing.assert_allclose(
        per_sample,
        0.5 * (ref.normal(score.shape, seed=2, dtype=np.float64) ** 2).sum(axis=1),
        rtol=1e-12,
    )
    mean = ref.dsm_loss(score, sigma, seed=2, return_grad=False)
    se = 0.5 * math.sqrt(2 * dim) / math.sqrt(batch)
    assert abs(mean - dim / 2) < 5 * se


@pytest.mark.parametrize("dtype", DTYPES)
def test_dsm_empty_batch(dtype):
    score = np.zeros((0, 5), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, g = ref.dsm_loss(score, np.zeros(0), seed=1)
        total, g_sum = ref.dsm_loss(score, 1.0, seed=1, reduction="sum")
        each, g_none = ref.dsm_loss(score, 1.0, seed=1, reduction="none")
    assert math.isnan(mean)
    assert total == 0.0
    assert each.shape == (0,)
    assert g.shape == g_sum.shape == g_none.shape == (0, 5)


def test_dsm_one_dimensional_score():
    score = np.array([0.5, -1.0, 2.0])
    sigma = np.array([1.0, 2.0, 0.5])
    z = np.array([0.1, 0.2, -0.3])
    each, grad = ref.dsm_loss(score, sigma, noise=z, reduction="none")
    np.testing.assert_allclose(each, 0.5 * sigma**2 * (score + z / sigma) ** 2, rtol=1e-15)
    np.testing.assert_allclose(grad, sigma**2 * (score + z / sigma), rtol=1e-15)


def test_dsm_argument_errors():
    score = np.zeros((2, 3))
    with pytest.raises(ValueError):
        ref.dsm_loss(score, 1.0)
    with pytest.raises(ValueError):
        ref.dsm_loss(score, 1.0, seed=0, reduction="max")
    with pytest.raises(ValueError):
        ref.dsm_loss(score, 1.0, noise=np.zeros((3, 2)))


# ---------------------------------------------------------- langevin_step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("step", [0.01, np.array([0.001, 0.01, 0.1])])
def test_langevin_formula(dtype, step):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 2)).astype(dtype)
    score = rng.standard_normal((3, 4, 2)).astype(dtype)
    z = ref.normal(x.shape, seed=12, counter=8, dtype=dtype, precise=True)
    out = ref.langevin_step(x, score, step, seed=12, counter=8)
    assert out.dtype == np.float64 and out.shape == x.shape
    eps = np.asarray(step, dtype=z.dtype)
    eps = eps if eps.ndim == 0 else eps[:, None, None]
    want = x.astype(z.dtype) + eps * score.astype(z.dtype) + np.sqrt(2 * eps) * z
    np.testing.assert_array_equal(out, want.astype(np.float64))
    plain = x + eps.astype(np.float64) * score + np.sqrt(2 * eps.astype(np.float64)) * z.astype(
        np.float64
    )
    np.testing.assert_allclose(out, plain, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(
        ref.langevin_step(x, score, 0.0, seed=12, counter=8), x.astype(np.float64)
    )


def test_langevin_on_standard_normal_variance_recursion():
    batch, step = 400_000, 0.05
    x = ref.normal((batch, 1), seed=1, counter=0, dtype=np.float64)
    var = 1.0
    for t in range(1, 5):
        x = ref.langevin_step(x, -x, step, seed=1, counter=t)
        var = (1 - step) ** 2 * var + 2 * step
    assert abs(x.mean()) < 5 * math.sqrt(var / batch)
    assert abs(x.var() - var) < 5 * var * math.sqrt(2 / batch)
