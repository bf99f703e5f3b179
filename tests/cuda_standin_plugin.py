"""A pytest plugin that runs tests/test_cuda.py without a GPU: scorekit's CUDA
backend is the CPU-backed stand-in of tests/cuda_standin.py and ``cupy`` a
stand-in module whose arrays are HostCudaArrays, so the CuPy half of the GPU
tests (their own code and their expectations) runs here; the PyTorch and JAX
halves skip (no CUDA). Used by tests/test_cuda_standin.py:

    PYTHONPATH=tests python -m pytest -p cuda_standin_plugin tests/test_cuda.py
"""

import sys
import types

import numpy as np


def pytest_configure(config):
    from cuda_standin import CpuBackedCuda, HostCudaArray, HostFramework

    from scorekit import _gpu

    try:  # real CUDA arrays must not reach the stand-in backend
        import torch
        torch.cuda.is_available = lambda: False
    except ImportError:
        pass
    _gpu._cuda = CpuBackedCuda()
    _gpu._FRAMEWORKS["hostcuda"] = HostFramework
    cupy = types.ModuleType("cupy")
    cupy.asarray = lambda a: HostCudaArray(np.array(a, copy=True))
    cupy.empty = lambda shape, dtype: HostCudaArray(np.full(shape, np.nan, dtype=dtype))
    cupy.asnumpy = lambda a: a.data.copy()
    sys.modules["cupy"] = cupy
