"""Threads and build information."""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import integer


def set_num_threads(n):
    """Set the number of CPU threads the kernels use (an int >= 1).

    Results do not depend on it: noise and reductions are fixed by the
    element index, not by the split of work.
    """
    n = integer(n, "n", "an int >= 1")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """Number of CPU threads the kernels use."""
    return _core.get_num_threads()


def build_info():
    """How this scorekit was built and what it runs on.

    Returns
    -------
    dict
        ``version``, ``compiler``, ``arch``, ``simd`` (the CPU noise path in
        use: "avx2" or "scalar"; the environment variable
        ``SCOREKIT_SIMD=scalar`` forces the portable path, which gives the same
        bits), ``simd_supported`` (the best this CPU and build offer),
        ``openmp``, ``num_threads``, ``cuda_compiled`` (CUDA kernels built in)
        and ``gpu_available`` (a usable GPU found at run time), plus ``numpy``.
    """
    info = dict(_core.build_info())
    info["numpy"] = np.__version__
    return info
