"""Arrays from other frameworks: DLPack on the CPU, clear errors for other devices.

Any object with ``__dlpack__`` (a PyTorch tensor, a JAX or CuPy array) whose
``__dlpack_device__`` is the CPU is viewed as a NumPy array without a copy.
CUDA arrays for the functions with a GPU path are routed by ``_gpu.py`` before
they get here; everywhere else an array on a GPU is refused with an error that
names the argument and its device, never copied to the host behind the
caller's back.
"""

from __future__ import annotations

import numpy as np

# DLPack device types (dlpack.h, DLDeviceType)
_CPU_DEVICES = (1, 3)  # kDLCPU, kDLCUDAHost (pinned host memory)
_DEVICE_NAMES = {1: "CPU", 2: "CUDA", 3: "CUDA host", 4: "OpenCL", 7: "Vulkan", 8: "Metal",
                 9: "VPI", 10: "ROCm", 11: "ROCm host", 13: "CUDA managed", 14: "oneAPI"}


def dlpack_device(value, name: str = "array") -> int | None:
    """The DLPack device type of ``value``, or None when it does not speak DLPack."""
    query = getattr(type(value), "__dlpack_device__", None)
    if query is None or isinstance(value, np.ndarray):
        return None
    try:
        return int(query(value)[0])
    except (ValueError, RuntimeError, BufferError, TypeError, IndexError) as exc:
        raise TypeError(f"{name} is on a device that DLPack cannot describe ({exc}): scorekit "
                        "takes CPU arrays, and CUDA arrays where a function has a GPU path"
                        ) from None


def host_view(value, name: str):
    """``value`` itself, or a zero-copy NumPy view of a CPU DLPack array.

    A DLPack array on any other device is refused with a TypeError naming ``name``.

    Objects without DLPack (lists, scalars, NumPy arrays) are returned as they
    are for ``numpy.asarray`` to take. An exporter that refuses (a tensor that
    requires grad, say) is also left to ``numpy.asarray``, whose error names the cause.
    """
    device = dlpack_device(value, name)
    if device is None:
        return value
    if device not in _CPU_DEVICES:
        where = _DEVICE_NAMES.get(device, f"DLPack device type {device}")
        raise TypeError(f"{name} is on a {where} device, but this function runs on the CPU "
                        "only: move it to the CPU first")
    # PyTorch exports a tensor's memory without its lazy negation / conjugation bits
    for resolve in ("resolve_neg", "resolve_conj"):
        if callable(getattr(value, resolve, None)):
            value = getattr(value, resolve)()
    try:
        return np.from_dlpack(value)
    except (BufferError, TypeError, RuntimeError):
        return value


def as_numpy(value, name: str) -> np.ndarray:
    """``numpy.asarray`` of ``host_view(value, name)``; an array NumPy cannot take (a
    bfloat16 or sparse tensor, one that requires grad, a ragged sequence) is refused
    with the cause and ``name``."""
    value = host_view(value, name)
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise ValueError(f"{name} cannot be read as an array: {exc}") from None
    except (TypeError, RuntimeError, BufferError) as exc:
        raise TypeError(f"{name} cannot be read as a NumPy array: {exc}") from None
