"""Every instruction-set path gives the bits of the portable scalar path."""

import os
import subprocess
import sys

import numpy as np
import pytest

import scorekit
from scorekit import _core

SUPPORTED = scorekit.build_info()["simd_supported"]
needs_avx2 = pytest.mark.skipif(SUPPORTED != "avx2", reason="CPU or build without AVX2")


@pytest.fixture
def restore_simd():
    before = scorekit.build_info()["simd"]
    yield
    _core.set_simd(before)


def on_each_level(fn):
    out = {}
    for level in ("scalar", "avx2"):
        assert _core.set_simd(level) == level
        out[level] = fn()
    return out["scalar"], out["avx2"]


def assert_same(a, b):
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(u, v)


@needs_avx2
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 31, 32, 33, 255, 256, 257, 4095, 4096, 4097, 100_003])
@pytest.mark.parametrize("kind", ["normal", "uniform", "rademacher"])
def test_noise_ragged_sizes(kind, n, dtype, restore_simd):
    assert_same(*on_each_level(lambda: getattr(scorekit, kind)(n, seed=2**63 + 5, counter=17,
                                                                dtype=dtype)))


@needs_avx2
@pytest.mark.parametrize("offset", [1, 2, 3, 7, 29, 2**32 * 4 - 9, 2**40 + 3])
def test_noise_offsets(offset, dtype, restore_simd):
    def fill():
        res = []
        for kind in ("normal", "uniform", "rademacher"):
            out = np.empty(1000, dtype=dtype)
            getattr(_core, kind)(out, 3, 4, offset)
            res.append(out)
        return tuple(res)

    assert_same(*on_each_level(fill))


@needs_avx2
def test_kernels_strided_and_offset_inputs(dtype, restore_simd):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((9, 2 * 1234 + 1)).astype(dtype)
    x = base[:, 1::2]  # strided, offset view
    sig = rng.uniform(0.1, 2, 9).astype(dtype)
    assert_same(*on_each_level(lambda: scorekit.perturb(x, sig, seed=1, counter=2, scale=sig)))
    assert_same(*on_each_level(lambda: scorekit.langevin_step(x, x, sig, seed=1, counter=2)))
    assert_same(*on_each_level(lambda: scorekit.dsm_loss(x, sig, seed=1, counter=2,
                                                         reduction="none")))
    long_rows = rng.standard_normal((2, 3 * 4096 + 5)).astype(dtype)
    assert_same(*on_each_level(lambda: scorekit.dsm_loss(long_rows, 0.3, seed=4, reduction="none")))


def test_environment_variable_forces_scalar():
    env = dict(os.environ, SCOREKIT_SIMD="scalar")
    code = "import scorekit; print(scorekit.build_info()['simd'])"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "scalar"


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="simd level must be"):
        _core.set_simd("sse9")
