"""CUDA arrays: validation, allocation in the caller's framework, and the calls
into the CUDA backend (``scorekit._cuda``).

A PyTorch CUDA tensor or a CuPy array passed to the noise fills or probes
(``out=``), perturb, langevin_step, noisy_affine_step, dsm_loss, ssm_loss, ism_loss,
corrector_step, mala_propose, mala_accept, divergence or GaussianMixture goes to the
GPU kernels without a copy to the host (and predictor_step, through noisy_affine_step); a CUDA array
of a framework that speaks only DLPack (JAX) goes through a zero-copy PyTorch or
CuPy view and its results come back in its own framework. Outputs are
allocated by the caller's framework on the input's device, and the kernels are
enqueued on that framework's current stream (``torch.cuda.current_stream(device)``,
``cupy.cuda.get_current_stream()``);
nothing synchronises (a call's per-sample parameters given as host arrays are
copied on that stream together, in a copy kernel's parameters or, past about
32 KB (4 KB when built with a CUDA before 12.1), through page-locked
staging), except that
per-sample parameters given as device arrays are copied to the host to be
checked (B values; not within ``device_value_checks(False)``), a "mean" or
"sum" loss is returned as a Python float (which waits for the kernel), the
trace estimators read their moments at their stopping checks and at the end,
and a mixture's first call on a device waits for the upload of its parameters.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np

from . import _core
from ._interop import dlpack_device
from ._validate import (FLOAT_DTYPES, PROBE_KINDS, batch_scale, choice, coefficient,
                        count, dtype_arg, flag, log_densities, no_stream_with_noise, per_sample,
                        probe_count, real_values, reduction_args, sample_offset, shape_arg,
                        snr_arg, stream)

_IMPORT_ERROR = ""
try:  # built only where nvcc was found (SCOREKIT_CUDA=AUTO / ON)
    from . import _cuda
except ModuleNotFoundError:  # pragma: no cover - depends on the build
    _cuda = None
except ImportError as exc:  # pragma: no cover - built, but cannot load here
    _cuda, _IMPORT_ERROR = None, str(exc)

KDL_CUDA = 2
_NOISE_KINDS = {"normal": 0, "uniform": 1, "rademacher": 2}


def compiled() -> bool:
    """Whether this build has the CUDA backend."""
    return _cuda is not None


def device_count() -> int:
    """CUDA devices the backend can use (0 without the backend, a driver or a GPU)."""
    return _cuda.device_count() if _cuda is not None else 0


def on_cuda(value, name: str) -> bool:
    """True for an array whose DLPack device is a CUDA GPU."""
    return type(value) is not np.ndarray and dlpack_device(value, name) == KDL_CUDA


class _Torch:
    @staticmethod
    def empty(like, shape, dtype):
        import torch
        return torch.empty(shape, dtype=_torch_dtype(dtype), device=like.device)

    @staticmethod
    def contiguous(x):
        return x.contiguous()

    @staticmethod
    def host(x):
        return x.detach().cpu().numpy()

    @staticmethod
    def copy(x):
        return x.clone()

    @staticmethod
    def stream(x) -> int:
        index = x.device.index
        return _torch_stream(index)(index)

    @staticmethod
    def astype(x, dtype):
        return x.to(_torch_dtype(dtype))

    @staticmethod
    def sqrt(x):
        import torch
        return torch.sqrt(x)

    @staticmethod
    def full_like(x, value):
        import torch
        return torch.full_like(x, value)

    @staticmethod
    def broadcast(x, n, dtype):
        """A new (n,) array of dtype holding the 0-d x's value, made on the device."""
        return x.to(_torch_dtype(dtype)).expand(n).contiguous()

    @staticmethod
    def synchronize(x):
        import torch
        torch.cuda.current_stream(x.device).synchronize()

    @staticmethod
    def device_of(x):
        import torch
        return torch.cuda.device(x.device)

    @staticmethod
    def all_finite(x) -> bool:
        import torch
        return bool(torch.isfinite(x).all())


class _CuPy:
    @staticmethod
    def empty(like, shape, dtype):
        import cupy
        with cupy.cuda.Device(like.device.id):
            return cupy.empty(shape, dtype=dtype)

    @staticmethod
    def contiguous(x):
        import cupy
        with cupy.cuda.Device(x.device.id):
            return cupy.ascontiguousarray(x)

    @staticmethod
    def host(x):
        import cupy
        return cupy.asnumpy(x)

    @staticmethod
    def copy(x):
        import cupy
        with cupy.cuda.Device(x.device.id):
            return x.copy()

    @staticmethod
    def stream(x) -> int:
        import cupy
        with cupy.cuda.Device(x.device.id):
            return int(cupy.cuda.get_current_stream().ptr)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

    @staticmethod
    def sqrt(x):
        import cupy
        with cupy.cuda.Device(x.device.id):
            return cupy.sqrt(x)

    @staticmethod
    def full_like(x, value):
        import cupy
        with cupy.cuda.Device(x.device.id):
            return cupy.full_like(x, value)

    @staticmethod
    def broadcast(x, n, dtype):
        import cupy
        with cupy.cuda.Device(x.device.id):
            return cupy.broadcast_to(x.astype(dtype), (n,)).copy()

    @staticmethod
    def synchronize(x):
        import cupy
        with cupy.cuda.Device(x.device.id):
            cupy.cuda.get_current_stream().synchronize()

    @staticmethod
    def device_of(x):
        import cupy
        return cupy.cuda.Device(x.device.id)

    @staticmethod
    def all_finite(x) -> bool:
        import cupy
        with cupy.cuda.Device(x.device.id):
            return bool(cupy.isfinite(x).all())


_FRAMEWORKS = {"torch": _Torch, "cupy": _CuPy}
_RAW_STREAM = []


def _torch_stream(index: int):
    """device index -> the handle of PyTorch's current stream on it. PyTorch's own raw
    query where it has one (what its compiled kernels use; no Stream object is made)
    and where it gives the public one's handle of a stream of its own at first use
    (on ``index``, the first call's device: no other device is touched); else the
    public one."""
    if not _RAW_STREAM:
        import torch

        def public(index):
            return int(torch.cuda.current_stream(index).cuda_stream)
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        try:
            side = torch.cuda.Stream(index)  # not the default stream, whose handle is 0
            with torch.cuda.stream(side):
                agrees = raw is not None and raw(index) == public(index) == side.cuda_stream
        except Exception:  # noqa: BLE001 - a private function: anything means "do not use"
            agrees = False
        _RAW_STREAM.append(raw if agrees else public)
    return _RAW_STREAM[0]


def _host_c(arr) -> np.ndarray:
    """``arr`` as a C-contiguous, native-order array of its shape (0-d stays 0-d)."""
    arr = np.asarray(arr, order="C")
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _upload(host: np.ndarray, dst: int, device: int, stream: int) -> None:
    """A C-contiguous, native-order host array into device memory at dst, enqueued
    on ``stream`` in a copy kernel's parameters (up to about 32 KB of whole
    words, 4 KB when built with a CUDA before 12.1: cuda/inline_copy.cuh) or
    through page-locked staging (cuda/staging.hpp): the host does not wait for
    the stream, and ``host`` may go when this returns. Refused (a RuntimeError)
    while the stream captures a CUDA graph."""
    if not (host.flags.c_contiguous and host.dtype.isnative):
        raise ValueError("scorekit: internal error: uploads take C-contiguous native arrays")
    if host.nbytes:
        _cuda.upload(host, dst, device, stream)


class DeviceArray:
    """A C-contiguous float32/float64 CUDA array: the object, its pointer and layout."""

    __slots__ = ("obj", "ptr", "shape", "dtype", "device", "fw", "nbytes", "origin")

    def __init__(self, obj, ptr, shape, dtype, device, fw):
        self.obj, self.ptr, self.shape, self.dtype, self.device, self.fw = (
            obj, ptr, shape, dtype, device, fw)
        self.origin = None  # the namespace of a DLPack-only array's own framework
        self.nbytes = math.prod(shape) * dtype.itemsize

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def overlaps(self, other: DeviceArray) -> bool:
        return (self.device == other.device and self.nbytes and other.nbytes
                and self.ptr < other.ptr + other.nbytes and other.ptr < self.ptr + self.nbytes)


_USABLE = [None]  # the backend module that last passed _backend's checks


def _backend(name):
    if _cuda is not None and _cuda is _USABLE[0]:
        return
    if _cuda is None and _IMPORT_ERROR:
        raise TypeError(f"{name} is on a CUDA device, but scorekit's CUDA backend could not be "
                        f"loaded: {_IMPORT_ERROR}")
    if _cuda is None:
        raise TypeError(f"{name} is on a CUDA device, but this scorekit build has no CUDA "
                        "backend (no nvcc 11.8 or later was found when it was built): move it "
                        "to the CPU, or build with SCOREKIT_CUDA=ON")
    if _cuda.device_count() == 0:
        why = _cuda.runtime_status() if hasattr(_cuda, "runtime_status") else ""
        raise TypeError(f"{name} is on a CUDA device, but scorekit's CUDA runtime sees no device"
                        f" ({why or 'no driver or no GPU'}; the driver must support the CUDA "
                        "version scorekit was built with)")
    _USABLE[0] = _cuda


# ---------------------------------------------- arrays that speak only DLPack ---
# A CUDA array of another framework (a JAX array, ...) reaches the kernels as a
# zero-copy PyTorch tensor or CuPy array (their from_dlpack, which makes the
# bridge's stream wait for the producer); the call's results go back to the
# first array's framework through its array namespace's from_dlpack, and the
# call waits for its kernels (the producer's buffers are only borrowed).

_CALL = threading.local()


def _bridge_from_dlpack():
    """from_dlpack of the framework that carries DLPack-only CUDA arrays, or None."""
    try:
        import torch
        if torch.cuda.is_available():
            return torch.from_dlpack
    except ImportError:
        pass
    try:
        import cupy
        return cupy.from_dlpack
    except ImportError:
        return None


def callers_framework(fn):
    """Runs a CUDA entry point; its arrays go back to the framework of the call's first
    array when that array came through DLPack, and a call that borrowed any buffer
    through DLPack waits for its kernels, also when it fails."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        outer = getattr(_CALL, "state", None)
        _CALL.state = state = {"seen": 0, "origin": None, "bridge": None, "sync": None}
        try:
            res = fn(*args, **kwargs)
        finally:
            _CALL.state = outer
            if state["sync"] is not None:
                state["bridge"].synchronize(state["sync"])
        return res if state["origin"] is None else _to_origin(res, state)
    return call


def _to_origin(res, state):
    if isinstance(res, tuple):
        items = [_to_origin(r, state) for r in res]
        return type(res)(*items) if hasattr(res, "_fields") else tuple(items)
    fw = state["bridge"]
    if _framework_of(res) is not fw:
        return res
    with fw.device_of(res):
        back = state["origin"].from_dlpack(res)
    # a framework may narrow what it takes in (JAX without 64-bit mode: float64 to
    # float32); such a result comes back as a NumPy array instead (B values)
    if np.dtype(back.dtype) != np.dtype(res.__cuda_array_interface__["typestr"]):
        return fw.host(res)
    return back


def _bridged(value, name: str, out: bool) -> tuple:
    """A DLPack-only CUDA array as a zero-copy array of the bridge framework, and the
    namespace of its own framework."""
    what = f"{name} is a CUDA array of type {type(value).__name__}"
    if out:
        raise ValueError(f"{what}: scorekit writes outputs only into PyTorch tensors and CuPy "
                         "arrays (leave out= unset to get a new array of this framework)")
    namespace = value.__array_namespace__() if hasattr(value, "__array_namespace__") else None
    if namespace is None or not hasattr(namespace, "from_dlpack"):
        raise TypeError(f"{what}, without an array namespace to return results in: pass "
                        "PyTorch tensors or CuPy arrays")
    from_dlpack = _bridge_from_dlpack()
    if from_dlpack is None:
        raise TypeError(f"{what}: scorekit reaches such arrays through DLPack with PyTorch "
                        "(CUDA build) or CuPy, zero-copy; install one of them")
    bridged = from_dlpack(value)
    state = getattr(_CALL, "state", None)
    if state is not None:
        state["bridge"] = _framework_of(bridged)
        if state["sync"] is None:
            state["sync"] = bridged
        if state["seen"] == 1:  # the call's first array: results go back to its framework
            state["origin"] = namespace
    return bridged, namespace


def device_array(value, name: str, *, out: bool = False) -> DeviceArray:
    """``value`` (a PyTorch CUDA tensor or CuPy array, or another framework's CUDA
    array through DLPack) checked and made C-contiguous.

    ``out=True``: the array must already be C-contiguous (it is written in place).
    """
    _backend(name)
    state = getattr(_CALL, "state", None)
    if state is not None:
        state["seen"] += 1
    fw = _framework_of(value)
    origin = None
    if fw is None:
        if not hasattr(value, "__dlpack__"):
            raise TypeError(f"{name} is a CUDA array of type {type(value).__name__}: scorekit's "
                            "CUDA backend takes PyTorch tensors, CuPy arrays and DLPack arrays")
        value, origin = _bridged(value, name, out)
        fw = _framework_of(value)
    arr = _device_array(value, name, fw, out)
    arr.origin = origin
    return arr


def _framework_of(value):
    """The framework class of an array (None for arrays of other frameworks)."""
    return _FRAMEWORKS.get(type(value).__module__.split(".")[0])


def _device_array(value, name: str, fw, out: bool) -> DeviceArray:
    if getattr(value, "requires_grad", False):
        raise TypeError(f"{name} requires grad: pass {name}.detach(), or use the autograd ops "
                        "of scorekit.torch")
    if fw is _Torch:
        if value.is_neg() or value.is_conj():
            if out:  # resolving makes a copy: the results would not reach the caller's tensor
                raise ValueError(f"{name} carries PyTorch's lazy negation or conjugation (a "
                                 "view such as z.conj().imag), which an output cannot be "
                                 f"written through: pass {name}.resolve_neg() and use it")
            value = value.resolve_neg().resolve_conj()
        dt = getattr(value, "dtype", None)
        dtype = _torch_floats().get(dt) if dt is not None else None
        if dtype is not None and value.is_contiguous():  # the common case, without the
            shape = tuple(value.shape)                    # array interface's Python work
            return DeviceArray(value, value.data_ptr(), shape, dtype, value.device.index, fw)
    iface = value.__cuda_array_interface__
    dtype = np.dtype(iface["typestr"])
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {dtype}")
    shape = tuple(int(s) for s in iface["shape"])
    strides = iface.get("strides")
    contiguous = strides is None or strides == _c_strides(shape, dtype.itemsize)
    if not contiguous:
        if out:
            raise ValueError(f"{name} must be C-contiguous")
        return device_array(fw.contiguous(value), name)
    if out and iface["data"][1]:
        raise ValueError(f"{name} is read-only")
    device = int(value.__dlpack_device__()[1])
    return DeviceArray(value, int(iface["data"][0]), shape, dtype, device, fw)


_TORCH_FLOATS = {}  # torch.float32 / torch.float64 -> NumPy dtype, and back (at first use)
_TORCH_DTYPES = {}


def _torch_floats() -> dict:
    if not _TORCH_FLOATS:
        import torch
        for t in (torch.float32, torch.float64):
            dt = np.dtype(str(t).split(".")[1])
            _TORCH_FLOATS[t], _TORCH_DTYPES[dt] = dt, t
    return _TORCH_FLOATS


def _torch_dtype(dtype):
    """The torch dtype of a NumPy dtype, cached (``dtype.name`` is slow)."""
    dtype = np.dtype(dtype)
    t = _TORCH_DTYPES.get(dtype)
    if t is None:
        import torch
        _torch_floats()
        t = _TORCH_DTYPES.setdefault(dtype, getattr(torch, dtype.name))
    return t


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _same_device(ref: DeviceArray, arr: DeviceArray, name: str) -> None:
    """One framework, one device and one dtype per call."""
    if arr.fw is not ref.fw or arr.origin is not ref.origin:
        raise TypeError(f"{name} and the call's other arrays come from different frameworks: "
                        "pass PyTorch tensors only or CuPy arrays only")
    _same_device_only(ref, arr, name)
    if arr.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but the call's arrays are {ref.dtype}: "
                        "all arrays of one call must share one dtype")


def batch(value, name: str) -> DeviceArray:
    arr = device_array(value, name)
    if not arr.shape:
        raise ValueError(f"{name} must have shape (B, ...) with at least one axis, got shape ()")
    return arr


def param(value, name: str, ref: DeviceArray, B: int, **checks) -> tuple:
    """A per-sample parameter for the kernels: (device pointer or 0, value, array or None),
    to go through ``device_params`` before the launch.

    Numbers and host arrays are checked as on the CPU (a host array is held as
    the checked NumPy array: ``device_params`` copies a call's host arrays to
    the device together); a CUDA array is copied to the host for the same
    checks (which waits for its stream) and then read by the kernel where it
    is (a 0-d one is passed by value, cast like a number). Within
    ``device_value_checks(False)`` a CUDA array's values are not read
    (``_unchecked_values``).
    """
    if on_cuda(value, name):
        arr = device_array(value, name)
        if not _SETTINGS.values:
            dev = _unchecked_values(arr, name, ref, B)
            if dev is not None:
                return dev.ptr, 0.0, dev
        if arr.shape == ():  # a number on the device: any framework or dtype, cast like one
            _same_device_only(ref, arr, name)
            host = arr.fw.host(arr.obj)[()]
            return 0, float(per_sample(host, name, B, ref.dtype, **checks)), None
        _same_device(ref, arr, name)
        per_sample(arr.fw.host(arr.obj), name, B, ref.dtype, **checks)
        return arr.ptr, 0.0, arr
    return _host_param(per_sample(value, name, B, ref.dtype, **checks))


def _host_param(checked: np.ndarray) -> tuple:
    """A checked host parameter: a 0-d one by value, a (B,) one for device_params."""
    if checked.ndim == 0:
        return 0, float(checked), None
    return 0, 0.0, checked


def _unchecked_values(arr: DeviceArray, name: str, ref: DeviceArray, B: int):
    """A CUDA parameter within ``device_value_checks(False)`` as (B,) values on the
    device, not read back: a (B,) one as it is (its layout checked), a 0-d one of
    the call's framework broadcast there in the call's dtype, on the call's stream
    (cast as a number is); None for a 0-d one of another framework, which is read
    as always."""
    if arr.shape != ():
        _unchecked(arr, name, ref, B)
        return arr
    if arr.fw is not ref.fw or arr.origin is not ref.origin:
        return None
    _same_device_only(ref, arr, name)
    return device_array(arr.fw.broadcast(arr.obj, B, ref.dtype), name)


def _unchecked(arr: DeviceArray, name: str, ref: DeviceArray, B: int) -> None:
    """A (B,) CUDA parameter within ``device_value_checks(False)``: its framework, device,
    dtype and shape are checked, its values are not read."""
    _same_device(ref, arr, name)
    if arr.shape != (B,):
        raise ValueError(f"{name} must be a scalar or have shape (B,) = ({B},), got shape "
                         f"{arr.shape}")


def _same_device_only(ref: DeviceArray, arr: DeviceArray, name: str) -> None:
    if arr.device != ref.device:
        raise ValueError(f"{name} is on CUDA device {arr.device} but the call's arrays are on "
                         f"device {ref.device}")


def device_params(params: list, ref: DeviceArray, out: DeviceArray | None = None) -> list:
    """A call's parameters from ``param`` ready for its kernel: (pointer or 0, value, array).

    The host arrays (of ref's dtype, as ``param`` leaves them) are copied to the
    device together: one allocation and one copy for the call. A CUDA
    array that lies in ``out`` (which the kernel overwrites) is copied first.
    The caller holds the result until the launch: its arrays own the memory.
    """
    hosts = [arr for _, _, arr in params if type(arr) is np.ndarray]
    if any(arr.dtype != ref.dtype for arr in hosts):  # (the offsets below assume ref's)
        raise RuntimeError("scorekit: internal error: a host parameter of another dtype")
    block = None
    if hosts:
        block = _put(ref, hosts[0] if len(hosts) == 1 else np.concatenate(hosts))
    res, at = [], 0
    for ptr, value, arr in params:
        if type(arr) is np.ndarray:
            ptr, arr, at = block.ptr + at, block, at + arr.nbytes
        elif arr is not None and out is not None and arr.overlaps(out):
            arr = device_array(arr.fw.copy(arr.obj), "parameter")
            ptr = arr.ptr
        res.append((ptr, value, arr))
    return res


def _new(ref: DeviceArray, shape, dtype) -> DeviceArray:
    """A new C-contiguous array of ref's framework on ref's device."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    obj = ref.fw.empty(ref.obj, shape, dtype)
    ptr = obj.data_ptr() if ref.fw is _Torch else _pointer(obj)
    return DeviceArray(obj, ptr, shape, dtype, ref.device, ref.fw)


def _put(ref: DeviceArray, host) -> DeviceArray:
    """A host array copied into a new array on ref's device, enqueued on ref's stream."""
    host = _host_c(host)
    arr = _new(ref, host.shape, host.dtype)
    _upload(host, arr.ptr, ref.device, ref.fw.stream(ref.obj))
    return arr


def output(out, ref: DeviceArray, shape, dtype, inputs=()) -> DeviceArray:
    """A new array from the caller's framework, or the user's CUDA ``out`` once checked."""
    if out is None:
        return _new(ref, shape, dtype)
    if not on_cuda(out, "out"):
        raise ValueError("out must be a CUDA array on the inputs' device, got "
                         f"{type(out).__name__}")
    arr = device_array(out, "out", out=True)
    if arr.dtype != np.dtype(dtype):
        raise ValueError(f"out must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    _same_device(ref, arr, "out")
    if arr.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {arr.shape}")
    for name, a in inputs:
        if a.overlaps(arr) and not (a.ptr == arr.ptr and a.shape == arr.shape):
            raise ValueError(f"out overlaps {name} other than element for element")
    return arr


# ---------------------------------------------------------------- kernels ---

def _fill_target(out, shape: tuple, dtype) -> DeviceArray:
    """The CUDA ``out`` of a noise or probe fill, checked against the requested shape and dtype."""
    dtype = dtype_arg(dtype) if dtype is not None else None
    arr = device_array(out, "out", out=True)
    if arr.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {arr.shape}")
    if dtype is not None and dtype != arr.dtype:
        raise ValueError(f"out must have dtype {dtype}, got {arr.dtype}")
    return arr


@callers_framework
def fill(kind: str, shape, seed, counter, dtype, out, offset):
    """normal / uniform / rademacher into a CUDA ``out``."""
    shape = shape_arg(shape)
    arr = _fill_target(out, shape, dtype)
    seed, counter = stream(seed, counter)
    D = int(np.prod(shape[1:], dtype=np.int64)) if shape else 1
    offset = sample_offset(offset, shape[0] if shape else 1, D)
    _cuda.fill_noise(_NOISE_KINDS[kind], arr.ptr, arr.size, arr.dtype.itemsize, seed, counter,
                     offset * D, arr.device, arr.fw.stream(arr.obj))
    return out


@callers_framework
def probes(kind: str, shape, *, seed, counter, dtype, num_probes, offset, out):
    """Probe vectors into a CUDA ``out``: the stream rows of the CPU layout."""
    shape = shape_arg(shape)
    if not shape:
        raise ValueError("shape must have at least one axis (B, ...), got ()")
    K = 1 if num_probes is None else count(num_probes, "num_probes")
    arr = _fill_target(out, shape if num_probes is None else (shape[0], K) + shape[1:], dtype)
    seed, counter = stream(seed, counter)
    D = int(np.prod(shape[1:], dtype=np.int64))
    offset = sample_offset(offset, shape[0], D, K)
    # rows b * K + k hold stream rows (offset + b) * K + k: one contiguous range
    fill_kind = _NOISE_KINDS["rademacher" if kind == "rademacher" else "normal"]
    st = arr.fw.stream(arr.obj)
    _cuda.fill_noise(fill_kind, arr.ptr, arr.size, arr.dtype.itemsize, seed, counter,
                     offset * K * D, arr.device, st)
    if kind == "sphere":
        work = _scratch(arr, _cuda.sphere_work(shape[0] * K, D))
        _cuda.sphere_rows(arr.ptr, shape[0] * K, D, work.ptr, arr.dtype.itemsize, arr.device, st)
    return out


@callers_framework
def perturb(x, sigma, *, seed, counter, scale, offset, out):
    xa = batch(x, "x")
    B, D = _rows(xa)
    sig = param(sigma, "sigma", xa, B, positive=True)
    sca = param(1.0 if scale is None else scale, "scale", xa, B)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D)
    res = output(out, xa, xa.shape, xa.dtype, [("x", xa)])
    sca, sig = device_params([sca, sig], xa, res)
    _cuda.perturb(xa.ptr, B, D, sca[0], sca[1], sig[0], sig[1], seed, counter, offset, res.ptr,
                  xa.dtype.itemsize, xa.device, xa.fw.stream(xa.obj))
    return res.obj


@callers_framework
def langevin_step(x, score, step_size, *, seed, counter, offset, out):
    xa, sa = _pair(x, score)
    B, D = _rows(xa)
    step = param(step_size, "step_size", xa, B, nonnegative=True, doubled=True)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D)
    res = output(out, xa, xa.shape, xa.dtype, [("x", xa), ("score", sa)])
    (step,) = device_params([step], xa, res)
    _cuda.langevin_step(xa.ptr, sa.ptr, B, D, step[0], step[1], seed, counter, offset, res.ptr,
                        xa.dtype.itemsize, xa.device, xa.fw.stream(xa.obj))
    return res.obj


def _companion(value, name: str, ref: DeviceArray, ref_name: str, shape=None) -> DeviceArray:
    """Another array of the call: on ref's device, framework and dtype (and of ``shape``)."""
    if not on_cuda(value, name):
        raise ValueError(f"{name} must be a CUDA array on {ref_name}'s device ({ref_name} is on "
                         "a CUDA device)")
    arr = device_array(value, name)
    _same_device(ref, arr, name)
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return arr


def _pair(x, score) -> tuple:
    xa = batch(x, "x")
    return xa, _companion(score, "score", xa, "x", xa.shape)


def _rows(arr: DeviceArray) -> tuple:
    """(B, D): the batch and the elements per sample."""
    B = arr.shape[0]
    return B, (arr.size // B if B else 0)


def _coefficient(value, name: str, ref: DeviceArray, B: int, nonnegative: bool = False) -> tuple:
    """A per-sample coefficient as the CPU takes it (a float64 array is cast to the
    call's dtype) for ``device_params``, as ``param`` gives it (a CUDA array goes
    through ``param``)."""
    if on_cuda(value, name):
        arr = device_array(value, name)
        if arr.shape == (B,) and arr.dtype != ref.dtype:
            value = arr.fw.astype(arr.obj, ref.dtype)
        return param(value, name, ref, B, nonnegative=nonnegative)
    return _host_param(coefficient(value, name, B, ref.dtype, nonnegative=nonnegative))


def _log_densities(value, name: str, ref: DeviceArray, B: int) -> DeviceArray:
    """(B,) float64 log-densities on ref's device (host values are copied there)."""
    if on_cuda(value, name):
        arr = device_array(value, name)
        if arr.fw is not ref.fw:
            raise TypeError(f"{name} and the call's other arrays come from different "
                            "frameworks: pass PyTorch tensors only or CuPy arrays only")
        _same_device_only(ref, arr, name)
        if arr.shape != (B,):
            raise ValueError(f"{name} must have shape (B,) = ({B},), got {arr.shape}")
        if arr.dtype != np.float64:
            arr = device_array(arr.fw.astype(arr.obj, np.float64), name)
        return arr
    return _put(ref, log_densities(value, name, B))


def _scratch(ref: DeviceArray, n: int) -> DeviceArray:
    """A float64 work array of n (at least 1) elements on ref's device."""
    return output(None, ref, (max(int(n), 1),), np.float64)


def _launch(ref: DeviceArray) -> tuple:
    """The trailing launcher arguments: itemsize, device, stream."""
    return ref.dtype.itemsize, ref.device, ref.fw.stream(ref.obj)


class _LossRows:
    """The arrays of a loss kernel: one float64 work array (``n`` doubles of work, then the
    B per-sample losses at ``rows_ptr``) and, for reduction "none", the per-sample losses
    in ref's dtype, which the kernel writes too (at ``typed_ptr``; 0 otherwise)."""

    def __init__(self, ref: DeviceArray, n: int, B: int, reduction: str):
        self.ref, self.n, self.B, self.reduction = ref, int(n), B, reduction
        self.work = _scratch(ref, self.n + B)
        self.rows_ptr = self.work.ptr + self.n * 8
        self.typed = _new(ref, (B,), ref.dtype) if reduction == "none" else None
        self.typed_ptr = self.typed.ptr if self.typed is not None else 0

    def loss(self):
        """The loss: the typed per-sample losses, or their sum or mean as on the CPU (sums
        in float64, the CPU's fixed order): a Python float, or a 0-d float64 device array
        within ``device_losses()``."""
        if self.typed is not None:
            return self.typed.obj
        ref, B = self.ref, self.B
        mean = self.reduction == "mean"
        if _SETTINGS.on_device:
            out = output(None, ref, (), np.float64)
            _cuda.reduce_losses(self.rows_ptr, B, mean, out.ptr, ref.device,
                                ref.fw.stream(ref.obj))
            return out.obj
        rows = self.work.obj[self.n:self.n + B]
        t = _core.sum(np.ascontiguousarray(ref.fw.host(rows), dtype=np.float64))
        if not mean:
            return t
        return t / B if B else float("nan")


class _Settings(threading.local):
    """The calling thread's settings of CUDA calls (set by the blocks below)."""

    def __init__(self):
        self.on_device = False  # "mean" / "sum" losses as device arrays (device_losses)
        self.values = True      # CUDA per-sample parameters' values checked
        self.outer = []         # the values the open blocks replaced, innermost last


_SETTINGS = _Settings()


class _ThreadSetting:
    """A ``with`` block that sets one of the calling thread's settings and restores it;
    the replaced values are kept on the thread's own stack (blocks end innermost
    first), so one instance may be entered in several threads or nested in itself."""

    def __init__(self, name: str, value):
        self._name, self._value = name, value

    def __enter__(self):
        _SETTINGS.outer.append(getattr(_SETTINGS, self._name))
        setattr(_SETTINGS, self._name, self._value)
        return self

    def __exit__(self, *exc):
        setattr(_SETTINGS, self._name, _SETTINGS.outer.pop())
        return False


class device_value_checks(_ThreadSetting):
    """Whether per-sample parameters given as CUDA arrays have their values checked.

    The per-sample parameters of :func:`perturb` (``sigma``, ``scale``),
    :func:`langevin_step` (``step_size``), :func:`noisy_affine_step` and
    :func:`predictor_step` (``a``, ``c``, ``g``), :func:`dsm_loss`
    (``sigma``, ``weight``), :func:`corrector_step` (``alpha``) and
    :func:`mala_propose` and :func:`mala_accept` (``step_size``), given as
    (B,) CUDA arrays, are
    checked like host arrays: finite, and > 0 or >= 0 as the function asks.
    To do that scorekit copies their B values to the host, so the call waits
    for the array's stream. In a training or sampling loop that keeps its
    parameters on the GPU this wait stops the host from running ahead::

        with scorekit.device_value_checks(False):
            for step in range(steps):
                idx = torch.randint(len(sigmas), (B,), device="cuda")
                loss = scorekit.torch.dsm_loss(model(x, idx), sigmas[idx], seed=0,
                                               counter=step)
                loss.backward()
                ...

    Within ``device_value_checks(False)`` those arrays are not read back:
    their framework, device, dtype and shape are still checked, but values
    that the checks would refuse (non-finite, or <= 0 where > 0 is asked)
    give undefined numbers in the results instead of an error (never a crash
    or an access out of bounds: the values only enter the arithmetic). A
    0-d CUDA array of the call's framework is not read back either: it is
    broadcast to (B,) values on the device, in the call's dtype. Numbers,
    host arrays and 0-d CUDA arrays of another framework are checked as
    always, and so are the parameters that the host computes with:
    :class:`GaussianMixture`'s ``sigma`` and :func:`divergence`'s ``step``
    are read on the host in any case.

    A context manager. The setting belongs to the calling thread: code that
    runs scorekit's calls in other threads (a forward recomputed by
    ``torch.utils.checkpoint`` in the autograd engine's thread,
    ``torch.nn.DataParallel``'s replicas) needs the block in those threads.
    Blocks nest; ``device_value_checks(True)`` turns the checks back on inside
    an outer ``False``.

    Parameters
    ----------
    enabled : bool
        Check the values of those CUDA parameters (the default outside any
        block) or not.
    """

    def __init__(self, enabled: bool):
        super().__init__("values", flag(enabled, "enabled"))


class device_losses(_ThreadSetting):
    """Whether "mean" and "sum" losses of CUDA calls stay on the device.

    :func:`dsm_loss`, :func:`ssm_loss` and :func:`ism_loss` with CUDA arrays
    reduce their per-sample losses in float64 in the CPU's order and, by
    default, return the result as a Python float, the CPU's value bit for
    bit. A float is on the host, so the call waits for its kernels. Within
    ``device_losses()`` the same reduction runs on the device and the loss
    comes back as a 0-d float64 array of the caller's framework on the
    scores' device (the same bits: ``float(loss)`` is the float the call
    returns outside the block), so the call only enqueues kernels: the host
    runs ahead, and the call can be captured in a CUDA graph::

        with scorekit.device_losses():
            for step in range(steps):
                loss, grad = scorekit.dsm_loss(score, sigma, seed=0, counter=step)
                losses.append(loss)          # (a 0-d CuPy or PyTorch array)
        print(cupy.stack(losses).get())     # one wait, at the end

    Losses of CPU calls, and ``reduction="none"`` (per-sample losses in the
    scores' dtype, on the device in any case), are unchanged.
    :mod:`scorekit.torch` reduces its CUDA losses on the device always (its
    losses are tensors).

    A context manager. The setting belongs to the calling thread; blocks nest,
    and ``device_losses(False)`` returns floats again inside an outer block.

    Parameters
    ----------
    enabled : bool, optional
        Return reduced losses of CUDA calls as 0-d device arrays (True, the
        default of the block) or as Python floats (False, the default outside
        any block).
    """

    def __init__(self, enabled: bool = True):
        super().__init__("on_device", flag(enabled, "enabled"))


@callers_framework
def noisy_affine_step(x, score, a, c, g, *, seed, counter, offset, out) -> tuple:
    """(x_next, x_mean) on the GPU; x_mean is a new array of the caller's framework."""
    xa, sa = _pair(x, score)
    B, D = _rows(xa)
    coeffs = [_coefficient(v, name, xa, B) for v, name in ((a, "a"), (c, "c"), (g, "g"))]
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D)
    res = output(out, xa, xa.shape, xa.dtype, [("x", xa), ("score", sa)])
    mean = output(None, xa, xa.shape, xa.dtype)
    coeffs = device_params(coeffs, xa, res)  # (held: their arrays live through the launch)
    (pa, va, _), (pc, vc, _), (pg, vg, _) = coeffs
    _cuda.affine_step(xa.ptr, sa.ptr, B, D, pa, va, pc, vc, pg, vg, seed, counter, offset,
                      res.ptr, mean.ptr, xa.dtype.itemsize, xa.device, xa.fw.stream(xa.obj))
    return res.obj, mean.obj


@callers_framework
def dsm_loss(score, sigma, *, seed, counter, noise, weight, reduction, return_grad, offset,
             weights):
    """The CUDA dsm_loss."""
    sa = batch(score, "score")
    B, D = _rows(sa)
    if (seed is None) == (noise is None):
        raise ValueError("dsm_loss: pass exactly one of seed= and noise=")
    na = None
    if noise is not None:
        if not on_cuda(noise, "noise"):
            raise ValueError("noise must be a CUDA array on score's device")
        na = device_array(noise, "noise")
        _same_device(sa, na, "noise")
        if na.shape != sa.shape:
            raise ValueError(f"noise must have shape {sa.shape}, got {na.shape}")
        no_stream_with_noise(counter, offset)
        seed_v = counter_v = offset = 0
    else:
        seed_v, counter_v = stream(seed, counter)
        offset = sample_offset(offset, B, D)
    sig = param(sigma, "sigma", sa, B, positive=True)
    if isinstance(weight, str):
        if weight not in weights:
            raise ValueError(f"weight must be 'sigma2', 'none', a number or a (B,) array, "
                             f"got {weight!r}")
        wt = (0, 0.0, None) if weight == "sigma2" else (0, 1.0, None)
        weight_is_sigma2 = weight == "sigma2"
    else:
        wt = param(weight, "weight", sa, B, nonnegative=True)
        weight_is_sigma2 = False
    reduction, return_grad = reduction_args(reduction, return_grad)
    sig, wt = device_params([sig, wt], sa)
    rows = _LossRows(sa, _cuda.dsm_work(B, D), B, reduction)
    grad = output(None, sa, sa.shape, sa.dtype) if return_grad else None
    _cuda.dsm_loss(sa.ptr, na.ptr if na else 0, B, D, sig[0], sig[1], weight_is_sigma2, wt[0],
                   wt[1], batch_scale(reduction, B), seed_v, counter_v, offset, rows.work.ptr,
                   rows.rows_ptr, rows.typed_ptr, grad.ptr if grad else 0, *_launch(sa))
    loss = rows.loss()
    return (loss, grad.obj) if return_grad else loss


@callers_framework
def ssm_loss(score, jvp, *, seed, counter, kind, variance_reduction, reduction, return_grad,
             offset):
    """The CUDA ssm_loss: probes regenerated on the device, never stored."""
    sa = batch(score, "score")
    ja = _companion(jvp, "jvp", sa, "score")
    B, D = _rows(sa)
    K = probe_count(sa.shape, ja.shape)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D, K)
    kind = choice(kind, "kind", PROBE_KINDS)
    vr = flag(variance_reduction, "variance_reduction")
    reduction, return_grad = reduction_args(reduction, return_grad)
    rows = _LossRows(sa, _cuda.ssm_work(B, K, D), B, reduction)
    gs = output(None, sa, sa.shape, sa.dtype) if return_grad else None
    gj = output(None, sa, ja.shape, sa.dtype) if return_grad else None
    _cuda.ssm_loss(PROBE_KINDS.index(kind), sa.ptr, ja.ptr, B, K, D, vr,
                   batch_scale(reduction, B), seed, counter, offset, rows.work.ptr, rows.rows_ptr,
                   rows.typed_ptr, gs.ptr if gs else 0, gj.ptr if gj else 0, *_launch(sa))
    loss = rows.loss()
    return (loss, gs.obj, gj.obj) if return_grad else loss


@callers_framework
def ism_loss(score, jac_trace, *, reduction, return_grad):
    """The CUDA ism_loss; ``jac_trace`` is a (B,) CUDA array of score's dtype."""
    sa = batch(score, "score")
    B, D = _rows(sa)
    ta = _companion(jac_trace, "jac_trace", sa, "score")
    if ta.shape != (B,):
        raise ValueError(f"jac_trace must have shape (B,) = ({B},), got {ta.shape}")
    reduction, return_grad = reduction_args(reduction, return_grad)
    scale = batch_scale(reduction, B)
    rows = _LossRows(sa, _cuda.ism_work(B, D), B, reduction)
    gs = output(None, sa, sa.shape, sa.dtype) if return_grad else None
    _cuda.ism_loss(sa.ptr, ta.ptr, B, D, scale, rows.work.ptr, rows.rows_ptr, rows.typed_ptr,
                   gs.ptr if gs else 0, *_launch(sa))
    loss = rows.loss()
    if not return_grad:
        return loss
    d_trace = _new(sa, (B,), sa.dtype)  # d loss / d jac_trace: the scale, filled on the device
    _fill(d_trace, scale)
    return loss, gs.obj, d_trace.obj


@callers_framework
def corrector_step(x, score, *, snr, alpha, seed, counter, offset, per_sample, out) -> tuple:
    """(x, x_mean, step_size) of the Langevin corrector on the GPU."""
    xa, sa = _pair(x, score)
    B, D = _rows(xa)
    snr_v = snr_arg(snr)
    al = _coefficient(alpha, "alpha", xa, B, nonnegative=True)
    per = flag(per_sample, "per_sample")
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D)
    res = output(out, xa, xa.shape, xa.dtype, [("x", xa), ("score", sa)])
    (al,) = device_params([al], xa, res)
    mean = output(None, xa, xa.shape, xa.dtype)
    step = output(None, xa, (max(B, 1),), np.float64)
    work = _scratch(xa, _cuda.corrector_work(B, D))
    _cuda.langevin_corrector(xa.ptr, sa.ptr, B, D, snr_v, al[0], al[1], per, seed, counter,
                             offset, res.ptr, mean.ptr, step.ptr, work.ptr, *_launch(xa))
    return res.obj, mean.obj, step.obj[:B]


@callers_framework
def mala_propose(x, score, step_size, *, seed, counter, offset):
    """The MALA proposal on the GPU: the affine step (1, h, sqrt(2 h)), sqrt(2 h) in
    float64 as on the CPU (on the device for a CUDA h within
    ``device_value_checks(False)``: h + h is exact and both sqrts are correctly
    rounded, so the same bits)."""
    xa = batch(x, "x")
    B = xa.shape[0]
    dev = None
    if not _SETTINGS.values and on_cuda(step_size, "step_size"):
        dev = _unchecked_values(device_array(step_size, "step_size"), "step_size", xa, B)
    if dev is not None:
        h64 = dev.fw.astype(dev.obj, np.float64)
        h, g = dev.obj, dev.fw.sqrt(h64 + h64)
    else:
        h = per_sample(host_parameter(step_size, "step_size", xa), "step_size", B, xa.dtype,
                       positive=True, doubled=xa.dtype == np.float64)  # (as on the CPU)
        g = np.sqrt(2.0 * h.astype(np.float64))
    return noisy_affine_step(x, score, 1.0, h, g, seed=seed, counter=counter, offset=offset,
                             out=None)[0]


@callers_framework
def mala_accept(x, score, logp, proposal, score_proposal, logp_proposal, step_size, *, seed,
                counter, offset) -> tuple:
    """(x, score, logp, accepted) of the MALA test on the GPU, new arrays of the caller's
    framework (accepted as bool)."""
    xa, sa = _pair(x, score)
    pa = _companion(proposal, "proposal", xa, "x", xa.shape)
    spa = _companion(score_proposal, "score_proposal", xa, "x", xa.shape)
    B, D = _rows(xa)
    lx = _log_densities(logp, "logp", xa, B)
    lp = _log_densities(logp_proposal, "logp_proposal", xa, B)
    (h,) = device_params([param(step_size, "step_size", xa, B, positive=True)], xa)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, D)
    x_out = output(None, xa, xa.shape, xa.dtype)
    s_out = output(None, xa, xa.shape, xa.dtype)
    l_out = output(None, xa, (max(B, 1),), np.float64)
    acc = _new(xa, (max(B, 1),), np.uint8)
    work = _scratch(xa, _cuda.mala_work(B, D))
    _cuda.mala_accept(xa.ptr, sa.ptr, lx.ptr, pa.ptr, spa.ptr, lp.ptr, B, D, h[0], h[1], seed,
                      counter, offset, x_out.ptr, s_out.ptr, l_out.ptr,
                      acc.ptr, work.ptr, *_launch(xa))
    return x_out.obj, s_out.obj, l_out.obj[:B], xa.fw.astype(acc.obj[:B], np.bool_)


# ------------------------------------------------------- sampling drivers ---

def like_array(like, dtype=np.float64, name: str = "like") -> DeviceArray:
    """``like`` as the reference of new arrays: its framework and device only (any
    dtype, shape or layout; nothing of it is read)."""
    if not on_cuda(like, name):
        raise TypeError(f"{name} must be a CUDA array (a PyTorch CUDA tensor or a CuPy array), "
                        f"got {type(like).__name__}")
    _backend(name)
    fw = _framework_of(like)
    if fw is None:
        raise TypeError(f"{name} is a CUDA array of type {type(like).__name__}: the drivers "
                        "and estimators run on the GPU with PyTorch tensors and CuPy arrays")
    return DeviceArray(like, 0, (), np.dtype(dtype), int(like.__dlpack_device__()[1]), fw)


def function_result(res, name: str, ref: DeviceArray, shape: tuple, dtype,
                    what: str) -> DeviceArray:
    """What a user's function returned on the GPU: a CUDA array of ref's framework and
    device and of ``shape``, cast to ``dtype``."""
    label = f"{name}'s result"
    if not on_cuda(res, label):
        raise TypeError(f"{name} must return a CUDA array on the {what}' device (they are on "
                        f"a CUDA device), got {type(res).__name__}")
    arr = device_array(res, label)
    if arr.fw is not ref.fw:
        raise TypeError(f"{name} returned an array of another framework than the {what}'")
    _same_device_only(ref, arr, label)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} returned shape {arr.shape}, expected {tuple(shape)}")
    if arr.dtype != np.dtype(dtype):
        arr = device_array(arr.fw.astype(arr.obj, dtype), label)
    return arr


class DriverArrays:
    """The few array operations of the sampling drivers, on CUDA arrays of the
    framework, device and dtype of ``ref`` (every step stays on the device)."""

    def __init__(self, ref: DeviceArray):
        self.ref = ref

    @property
    def dtype(self) -> np.dtype:
        return self.ref.dtype

    @classmethod
    def of(cls, x, name: str = "x") -> DriverArrays:
        like_array(x, name=name)  # PyTorch or CuPy: the user's functions get x's framework
        return cls(batch(x, name))

    @classmethod
    def empty(cls, like, shape: tuple, dtype) -> DriverArrays:
        """Operations for a new (shape, dtype) array on ``like``'s framework and device."""
        return cls(output(None, like_array(like), shape, dtype))

    def start(self):
        """A private copy of the reference array (the driver's state)."""
        return self.ref.fw.copy(self.ref.obj)

    def vector(self, value: float):
        """A float64 (B,) array of one value on the device (the level or time of a step)."""
        return _put(self.ref, np.full(self.ref.shape[0], value, dtype=np.float64)).obj

    def score(self, s, name: str = "score_fn"):
        """A score function's result: a CUDA array of the state's shape, cast to its dtype."""
        return function_result(s, name, self.ref, self.ref.shape, self.ref.dtype,
                               "samples").obj

    def logp(self, lp, name: str = "log_prob_fn"):
        """A log-density function's result: (B,) real values on the device or the host
        (integers are taken as on the CPU)."""
        B = self.ref.shape[0]
        if not on_cuda(lp, name):
            lp = real_values(lp, name, returned=True)
        shape = tuple(lp.shape) if hasattr(lp, "shape") else np.shape(lp)
        if shape != (B,):
            raise ValueError(f"{name} returned shape {shape}, expected ({B},)")
        if isinstance(lp, np.ndarray):
            return lp
        try:
            kind = np.dtype(lp.__cuda_array_interface__["typestr"]).kind
        except (AttributeError, RuntimeError, TypeError):
            return lp  # (one that cannot describe itself is refused by name further on)
        if kind not in "fiu":
            raise TypeError(f"{name} must return real numbers (a float or integer dtype), got "
                            f"dtype {lp.dtype}")
        if kind != "f" and type(lp) is type(self.ref.obj):
            lp = self.ref.fw.astype(lp, np.float64)
        return lp

    @staticmethod
    def live(x):
        return x  # the live state itself: copy it to keep it

    def scaled(self, x, factor: float):
        """x * factor, in x's dtype (the factor rounded to it first, as on the CPU)."""
        return x * float(self.ref.dtype.type(factor))

    def add_scaled(self, x, factor: float, s):
        """x + factor * s in x's dtype (the factor rounded to it first, as on the CPU)."""
        return x + float(self.ref.dtype.type(factor)) * s

    def copy(self, x):
        return self.ref.fw.copy(x)

    def divide(self, x, n: int):
        """x / n with the CPU's quotient (the divisor as a device array: PyTorch multiplies
        by the reciprocal of a Python number)."""
        return x / self.ref.fw.full_like(x, float(n))


# ------------------------------------------------------- trace estimation ---

class TraceArrays:
    """The array operations of hutchinson / diagonal on ``like``'s GPU: probes drawn
    there a round at a time, ``matvec`` called on device arrays, the samples, their
    moments and each sample's first non-finite probe computed there. The host reads
    them only where the caller asks (stopping checks, the end), so rounds are
    queued without waiting for the device."""

    checks_each_round = False  # a read of first_bad would wait for the round

    def __init__(self, like, shape: tuple, dtype):
        self.ref = like_array(like, dtype)
        self.shape, self.dtype = shape, np.dtype(dtype)
        self._active = None  # (host mask, its device copy) of the last round with stopped samples

    def _new(self, shape, dtype) -> DeviceArray:
        return output(None, self.ref, shape, dtype)

    def probes(self, kind, B, m, D, K, k0, seed, counter) -> DeviceArray:
        V = self._new((B, m) + self.shape[1:], self.dtype)
        work = _scratch(self.ref, _cuda.sphere_work(B * m, D) if kind == "sphere" else 0)
        _cuda.probe_rows(PROBE_KINDS.index(kind), seed, counter, B, m, D, K, k0, V.ptr,
                         work.ptr, *_launch(V))
        return V

    def apply(self, matvec, V: DeviceArray, batched: bool, name: str = "matvec") -> DeviceArray:
        if not callable(matvec):
            raise TypeError(f"{name} must be callable, got {type(matvec).__name__}")
        if batched:  # a private copy: matvec may not change the probes
            return self._product(matvec(V.fw.copy(V.obj)), V.shape, name)
        AV = self._new(V.shape, self.dtype)
        for i in range(V.shape[1]):
            v = V.fw.copy(V.obj[:, i])  # a private copy: matvec may not change the probes
            res = self._product(matvec(v), V.shape[:1] + V.shape[2:], name)
            AV.obj[:, i] = res.obj
        return AV

    def _product(self, res, shape: tuple, name: str) -> DeviceArray:
        return function_result(res, name, self.ref, shape, self.dtype, "probes")

    def moments(self, B: int) -> DeviceArray:
        M = self._new((max(B, 1), 3), np.float64)
        _fill_zero(M)
        return M

    def first_bad(self, B: int) -> DeviceArray:
        bad = self._new((max(B, 1),), np.int64)
        _fill(bad, -1)
        return bad

    def trace_moments(self, V: DeviceArray, AV: DeviceArray, active: np.ndarray,
                      moments: DeviceArray, first: int, first_bad: DeviceArray) -> None:
        """Adds the round's samples (probes first .. first + m) to the moments of the
        active samples and notes their first non-finite probes, all on the device."""
        B, m = V.shape[0], V.shape[1]
        D = V.size // (B * m) if B * m else 0
        act = None if active.all() else self._active_on_device(active)
        t = self._new((max(B * m, 1),), np.float64)
        work = _scratch(self.ref, _cuda.trace_work(B, m, D))
        _cuda.trace_moments(V.ptr, AV.ptr, B, m, D, act.ptr if act else 0, t.ptr, moments.ptr,
                            first, first_bad.ptr, work.ptr, *_launch(V))

    def _active_on_device(self, active: np.ndarray) -> DeviceArray:
        """The mask on the device, copied there only when it has changed."""
        if self._active is None or not np.array_equal(self._active[0], active):
            mask = np.ascontiguousarray(active, np.uint8)
            self._active = (mask.copy(), _put(self.ref, mask))
        return self._active[1]

    def host(self, arr: DeviceArray) -> np.ndarray:
        return arr.fw.host(arr.obj)

    def diagonal_state(self, B: int) -> tuple:
        mean = self._new((B,) + self.shape[1:], np.float64)
        m2 = self._new((B,) + self.shape[1:], np.float64)
        _fill_zero(mean)
        _fill_zero(m2)
        return mean, m2

    def diagonal_moments(self, V: DeviceArray, AV: DeviceArray, count: float, mean, m2) -> None:
        B, m = V.shape[0], V.shape[1]
        D = V.size // (B * m) if B * m else 0
        _cuda.diagonal_moments(V.ptr, AV.ptr, B, m, D, count, mean.ptr, m2.ptr, *_launch(V))

    def diagonal_result(self, mean: DeviceArray, m2: DeviceArray, n: int) -> tuple:
        """(estimate, stderr) on the device: std(ddof=1) / sqrt(n), nan for n < 2.

        The finiteness check is made here, once: a running mean that met a
        non-finite sample stays non-finite (inf - inf and nan give nan), so this
        one read finds what a check after every round would have found."""
        if not mean.fw.all_finite(mean.obj):
            raise ValueError("matvec returned non-finite values")
        if n < 2:
            se = device_array(mean.fw.copy(mean.obj), "stderr")
            _fill(se, np.nan)
            return mean.obj, se.obj
        # divisors as device arrays: PyTorch turns a division by a Python number into a
        # multiplication by its reciprocal, which is not the CPU's quotient
        fw = m2.fw
        return mean.obj, fw.sqrt(m2.obj / fw.full_like(m2.obj, float(n - 1))
                                 / fw.full_like(m2.obj, float(n)))


def _pointer(obj) -> int:
    return int(obj.__cuda_array_interface__["data"][0])


def _fill(arr: DeviceArray, value: float) -> None:
    arr.obj[...] = value


def _fill_zero(arr: DeviceArray) -> None:
    _fill(arr, 0.0)


class DivergenceOps:
    """The array operations of scorekit.divergence on x's GPU (the host version is
    scorekit.divergence._HostOps): probes, fn's calls and the sums stay there."""

    def __init__(self, x):
        like_array(x, name="x")  # PyTorch or CuPy: fn gets arrays of x's framework
        self.ref = batch(x, "x")
        self.x = self.ref.obj
        self.shape, self.dtype = self.ref.shape, self.ref.dtype
        self.trace_arrays = TraceArrays(self.x, self.shape, self.dtype)

    def host_rows(self, D):
        return self.ref.fw.host(self.x).reshape(self.shape[0], D)

    def host_param(self, value, name):
        return host_parameter(value, name, self.ref)

    def _put(self, a):
        return _put(self.ref, a).obj

    def column(self, h):
        return self._put(h.reshape((self.shape[0],) + (1,) * (len(self.shape) - 1)))

    def vector(self, h):
        return self._put(h)

    def new_like(self, V: DeviceArray) -> DeviceArray:
        return output(None, self.ref, V.shape, V.dtype)

    @staticmethod
    def probe(V: DeviceArray, k: int):
        return V.obj[:, k]

    @staticmethod
    def set_probe(JV: DeviceArray, k: int, value) -> None:
        JV.obj[:, k] = value

    def call(self, fn, y):
        return function_result(fn(y), "fn", self.ref, self.shape, self.dtype, "samples").obj

    def device(self):
        """The context of the arithmetic on x (CuPy computes on the current device)."""
        return self.ref.fw.device_of(self.x)

    @staticmethod
    def rows(a, B, D):
        return a.reshape(B, D)

    def float64(self, a):
        return self.ref.fw.astype(a, np.float64)

    def zeros(self, B):
        return self._put(np.zeros(B))

    def copy(self, a):
        return self.ref.fw.copy(a)

    def to_host(self, a):
        return self.ref.fw.host(a)


# ------------------------------------------------------- Gaussian mixtures ---

def host_parameter(value, name: str, ref: DeviceArray):
    """A parameter given as a CUDA array, brought to the host for the CPU's checks."""
    if on_cuda(value, name):
        arr = device_array(value, name)
        _same_device_only(ref, arr, name)
        return arr.fw.host(arr.obj)
    return value


def gmm_eval(means, variances, log_weights, xa: DeviceArray, sigma: np.ndarray, *,
             want_score: bool, want_div: bool, cache: dict) -> tuple:
    """(log p, score, divergence) of a mixture at the rows of a CUDA x (float64 (B,),
    x's dtype, float64 (B,); None where not asked for), arrays of x's framework.

    ``cache`` keeps the mixture's parameters on each device after their first
    upload (which is waited for, so any stream may read them later)."""
    B, D = xa.shape
    K = means.shape[0]

    key = (xa.fw.__name__, xa.device)
    if key not in cache:
        cache[key] = tuple(_put(xa, a) for a in (means, variances, log_weights))
        xa.fw.synchronize(cache[key][0].obj)
    mu, var, lw = cache[key]
    per_sample = sigma.ndim == 1
    sig = _put(xa, sigma) if per_sample else None
    log_p = output(None, xa, (max(B, 1),), np.float64)
    score = output(None, xa, xa.shape, xa.dtype) if want_score else None
    div = output(None, xa, (max(B, 1),), np.float64) if want_div else None
    work = _scratch(xa, _cuda.gmm_work(B, K, D, per_sample))
    _cuda.gmm_eval(mu.ptr, var.ptr, lw.ptr, K, D, xa.ptr, B, sig.ptr if per_sample else 0,
                   0.0 if per_sample else float(sigma), log_p.ptr, score.ptr if score else 0,
                   div.ptr if div else 0, work.ptr, *_launch(xa))
    return (log_p.obj[:B], score.obj if score else None, div.obj[:B] if div else None)
