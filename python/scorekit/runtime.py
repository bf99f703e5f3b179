"""Threads and build information."""

from __future__ import annotations

import os

import numpy as np

from . import _core, _gpu
from ._gpu import device_losses, device_value_checks  # noqa: F401 (public: scorekit.*)
from ._validate import integer


def set_num_threads(n):
    """Set the number of CPU threads the kernels use (an int >= 1).

    At most ``max(256, 8 * os.cpu_count())``: more threads than that only
    cost memory. Results do not depend on it: noise and reductions are fixed
    by the element index, not by the split of work.
    """
    n = integer(n, "n", "an int >= 1")
    limit = _max_threads()
    if not 1 <= n <= limit:
        raise ValueError(f"n must be in [1, {limit}], got {n}")
    _core.set_num_threads(n)


def _max_threads():
    """The largest value :func:`set_num_threads` accepts on this machine."""
    return max(256, 8 * (os.cpu_count() or 1))


def get_num_threads():
    """Number of CPU threads the kernels use."""
    return _core.get_num_threads()


def build_info():
    """How this scorekit was built and what it runs on.

    Returns
    -------
    dict
        ``version``, ``compiler``, ``arch``, ``simd`` (the CPU noise path in
        use: "avx512", "avx2" or "scalar", all with the same bits; the
        environment variable ``SCOREKIT_SIMD=scalar|avx2|avx512`` caps it at
        import), ``simd_supported`` (the best this CPU and build offer),
        ``openmp``, ``num_threads``, ``cuda_compiled`` (whether the CUDA
        backend ``scorekit._cuda`` was built: ``SCOREKIT_CUDA=AUTO`` builds it
        where nvcc 11.8 or later is found) and ``gpu_available`` (whether it sees a CUDA
        device, as :func:`gpu_available`), plus ``numpy``.
    """
    info = dict(_core.build_info())
    info["cuda_compiled"] = _gpu.compiled()
    info["gpu_available"] = gpu_available()
    info["numpy"] = np.__version__
    return info


def gpu_available():
    """Whether the CUDA backend is built and the CUDA runtime sees at least one device."""
    return _gpu.device_count() > 0
