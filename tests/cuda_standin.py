"""Stand-ins that run scorekit's CUDA layer (scorekit/_gpu.py) on a machine
without a GPU, with real numbers:

- ``HostCudaArray``: a NumPy array that presents itself as a CUDA array
  (``__cuda_array_interface__`` with its host address, DLPack device CUDA:0),
  with the arithmetic the sampling drivers use; ``HostFramework`` is its
  framework (allocation, copies, casts) for scorekit._gpu.
- ``CpuBackedCuda``: scorekit._cuda's launchers, each done by the CPU backend
  (scorekit._core) on the memory at the pointers it is given, so a call through
  the CUDA layer must give the CPU path's bits exactly when the layer passes
  the right pointers, shapes, offsets and parameters. Sphere probes are
  normalised with a NumPy replica of the LaneSum8 order.

tests/test_cuda_standin.py uses them; tests/test_cuda.py runs the same
comparisons against the real kernels where a GPU is present.
"""

import ctypes

import numpy as np

from scorekit import _core
from scorekit._validate import PROBE_KINDS


class HostCudaArray:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = np.asarray(data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def __cuda_array_interface__(self):
        d = self.data
        strides = None if d.flags.c_contiguous else d.strides
        return {"shape": d.shape, "typestr": d.dtype.str, "strides": strides,
                "data": (d.ctypes.data, not d.flags.writeable), "version": 3}

    def __dlpack_device__(self):
        return (2, 0)

    def __getitem__(self, index):
        return HostCudaArray(self.data[index])

    def __setitem__(self, index, value):
        self.data[index] = value.data if isinstance(value, HostCudaArray) else value

    def _other(self, other):
        return other.data if isinstance(other, HostCudaArray) else other

    def __add__(self, other):
        return HostCudaArray(self.data + self._other(other))

    __radd__ = __add__

    def __iadd__(self, other):
        self.data += self._other(other)
        return self

    def __mul__(self, other):
        return HostCudaArray(self.data * self._other(other))

    __rmul__ = __mul__

    def __neg__(self):
        return HostCudaArray(-self.data)

    def __sub__(self, other):
        return HostCudaArray(self.data - self._other(other))

    def __pow__(self, other):
        return HostCudaArray(self.data ** self._other(other))

    def astype(self, dtype):
        return HostCudaArray(self.data.astype(dtype))

    def sum(self, axis=None):
        return HostCudaArray(self.data.sum(axis))

    def reshape(self, *shape):
        return HostCudaArray(self.data.reshape(*shape))

    def __truediv__(self, other):
        if isinstance(other, (int, float)):  # as PyTorch on CUDA: times the reciprocal
            return HostCudaArray(self.data * (1.0 / other))
        return HostCudaArray(self.data / self._other(other))


HostCudaArray.__module__ = "hostcuda"


class DLPackOnlyArray:
    """A CUDA array of a framework that speaks only DLPack (as JAX does): no
    __cuda_array_interface__, an array namespace with from_dlpack."""

    def __init__(self, data):
        self.data = np.asarray(data)

    @property
    def dtype(self):
        return self.data.dtype

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None, **kwargs):
        raise AssertionError("the bridge's from_dlpack stands in for this")

    def __array_namespace__(self):
        return DLPackOnlyNamespace


DLPackOnlyArray.__module__ = "dlpackonly"


class DLPackOnlyNamespace:
    x64 = True  # False: float64 comes in as float32 (as JAX without its 64-bit mode)

    @classmethod
    def from_dlpack(cls, x):
        assert isinstance(x, HostCudaArray)
        data = x.data
        if not cls.x64 and data.dtype == np.float64:
            data = data.astype(np.float32)
        return DLPackOnlyArray(data)


def bridge_from_dlpack():
    """The bridge framework's from_dlpack: a zero-copy HostCudaArray of the same memory."""
    return lambda value: HostCudaArray(value.data)


def put(a):
    return HostCudaArray(np.array(a, copy=True))


def get(a):
    return a.data if isinstance(a, HostCudaArray) else a


class HostFramework:
    """scorekit._gpu's framework operations for HostCudaArray."""

    @staticmethod
    def empty(like, shape, dtype):
        return HostCudaArray(np.full(shape, np.nan, dtype=dtype) if np.dtype(dtype).kind == "f"
                             else np.zeros(shape, dtype=dtype))

    @staticmethod
    def contiguous(x):
        return HostCudaArray(np.ascontiguousarray(x.data))

    @staticmethod
    def host(x):
        return x.data.copy()

    @staticmethod
    def copy(x):
        return HostCudaArray(x.data.copy())

    @staticmethod
    def stream(x):
        return 0

    @staticmethod
    def astype(x, dtype):
        return HostCudaArray(x.data.astype(dtype))

    @staticmethod
    def sqrt(x):
        return HostCudaArray(np.sqrt(x.data))

    @staticmethod
    def full_like(x, value):
        return HostCudaArray(np.full_like(x.data, value))

    @staticmethod
    def broadcast(x, n, dtype):
        return HostCudaArray(np.broadcast_to(x.data.astype(dtype), (n,)).copy())

    syncs = 0

    @classmethod
    def synchronize(cls, x):
        assert isinstance(x, HostCudaArray)
        cls.syncs += 1

    @staticmethod
    def device_of(x):
        import contextlib
        return contextlib.nullcontext()

    @staticmethod
    def all_finite(x):
        return bool(np.all(np.isfinite(x.data)))


def view(ptr, shape, dtype):
    """The memory at ``ptr`` as a C-contiguous array (a (0,) array for ptr 0)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if ptr == 0 or n == 0:
        return np.zeros(shape, dtype)
    buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=n).reshape(shape)


def _typed_losses(ptr: int, losses: np.ndarray, dt) -> None:
    """The per-sample losses rounded to dt at ptr, where a loss kernel is given one (the
    CUDA kernels' LossRows)."""
    if ptr:
        view(ptr, losses.shape, dt)[...] = losses


def param(ptr, value, B, dtype):
    """A launcher's per-sample parameter as the CPU bindings take it."""
    return view(ptr, (B,), dtype) if ptr else np.asarray(value, dtype=dtype)


def lane_sum8(values):
    """Sum in the LaneSum8 order (position p to lane p % 8, lanes in position order)."""
    lanes = [float(np.cumsum(values[k::8])[-1]) if len(values) > k else 0.0 for k in range(8)]
    for k in range(8):
        lanes[k] = 0.0 + lanes[k]
    return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5])
                                                              + (lanes[3] + lanes[7]))


def chunked_sum_squares(row, chunk=4096):
    total = 0.0
    for c0 in range(0, len(row), chunk):
        r = row[c0:c0 + chunk].astype(np.float64)
        total += lane_sum8(r * r)
    return total


class CpuBackedCuda:
    """scorekit._cuda's interface, done by the CPU backend on host memory."""

    def __init__(self):
        self.calls = []

    def device_count(self):
        return 1

    def upload(self, host, dst, device, stream):
        self._record("upload")
        view(dst, host.shape, host.dtype)[...] = host

    def __getattr__(self, name):
        if name.endswith("_work"):  # the CPU needs no scratch: every work size is 0
            return lambda *args: 0
        raise AttributeError(name)

    def runtime_status(self):
        return ""

    chunk_threads = 0  # the CPU's reductions have no chunk width: kept, not used

    def chunk_threads_setting(self):
        return self.chunk_threads

    def set_chunk_threads(self, threads):
        if threads not in (0, 8, 32):
            raise ValueError(f"chunk threads must be 0 (chosen per call), 8 or 32, got {threads}")
        self.chunk_threads = threads

    @staticmethod
    def _dt(itemsize):
        return np.float32 if itemsize == 4 else np.float64

    def _record(self, name):
        self.calls.append(name)

    def fill_noise(self, kind, out, n, itemsize, seed, counter, offset, device, stream):
        self._record("fill_noise")
        fill = (_core.normal, _core.uniform, _core.rademacher)[kind]
        fill(view(out, (n,), self._dt(itemsize)), seed, counter, offset)

    def sphere_rows(self, v, rows, D, work, itemsize, device, stream):
        self._record("sphere_rows")
        arr = view(v, (rows, D), self._dt(itemsize))
        for r in range(rows):
            ss = chunked_sum_squares(arr[r])
            factor = np.sqrt(D / ss) if ss > 0 else 0.0
            arr[r] = (arr[r].astype(np.float64) * factor).astype(arr.dtype)

    def perturb(self, x, B, D, scale_p, scale, sigma_p, sigma, seed, counter, first, out,
                itemsize, device, stream):
        self._record("perturb")
        dt = self._dt(itemsize)
        _core.perturb(view(x, (B, D), dt), param(scale_p, scale, B, dt),
                      param(sigma_p, sigma, B, dt), seed, counter, first, view(out, (B, D), dt))

    def langevin_step(self, x, score, B, D, step_p, step, seed, counter, first, out, itemsize,
                      device, stream):
        self._record("langevin_step")
        dt = self._dt(itemsize)
        _core.langevin_step(view(x, (B, D), dt), view(score, (B, D), dt),
                            param(step_p, step, B, dt), seed, counter, first,
                            view(out, (B, D), dt))

    def affine_step(self, x, score, B, D, a_p, a, c_p, c, g_p, g, seed, counter, first, out,
                    out_mean, itemsize, device, stream):
        self._record("affine_step")
        dt = self._dt(itemsize)
        _core.affine_step(view(x, (B, D), dt), view(score, (B, D), dt), param(a_p, a, B, dt),
                          param(c_p, c, B, dt), param(g_p, g, B, dt), seed, counter, first,
                          view(out, (B, D), dt), view(out_mean, (B, D), dt) if out_mean else None)

    def dsm_loss(self, score, noise, B, D, sigma_p, sigma, weight_is_sigma2, weight_p, weight,
                 batch_scale, seed, counter, first, partial, row_loss, row_loss_out, grad,
                 itemsize, device, stream):
        self._record("dsm_loss")
        dt = self._dt(itemsize)
        losses = view(row_loss, (B,), np.float64)
        _core.dsm_loss(view(score, (B, D), dt), view(noise, (B, D), dt) if noise else None,
                       param(sigma_p, sigma, B, dt),
                       None if weight_is_sigma2 else param(weight_p, weight, B, dt), batch_scale,
                       seed, counter, first, losses, view(grad, (B, D), dt) if grad else None)
        _typed_losses(row_loss_out, losses, dt)

    def ssm_loss(self, kind, score, jvp, B, K, D, vr, batch_scale, seed, counter, first, work,
                 row_loss, row_loss_out, grad_score, grad_jvp, itemsize, device, stream):
        self._record("ssm_loss")
        dt = self._dt(itemsize)
        losses = view(row_loss, (B,), np.float64)
        _core.ssm_loss(PROBE_KINDS[kind], view(score, (B, D), dt), view(jvp, (B, K, D), dt), K,
                       vr, batch_scale, seed, counter, first, losses,
                       view(grad_score, (B, D), dt) if grad_score else None,
                       view(grad_jvp, (B, K, D), dt) if grad_jvp else None)
        _typed_losses(row_loss_out, losses, dt)

    def ism_loss(self, score, trace, B, D, batch_scale, work, row_loss, row_loss_out, grad_score,
                 itemsize, device, stream):
        self._record("ism_loss")
        dt = self._dt(itemsize)
        losses = view(row_loss, (B,), np.float64)
        _core.ism_loss(view(score, (B, D), dt), view(trace, (B,), dt), batch_scale, losses,
                       view(grad_score, (B, D), dt) if grad_score else None)
        _typed_losses(row_loss_out, losses, dt)

    def langevin_corrector(self, x, score, B, D, snr, alpha_p, alpha, per_sample, seed, counter,
                           first, out, out_mean, step, work, itemsize, device, stream):
        self._record("langevin_corrector")
        dt = self._dt(itemsize)
        _core.langevin_corrector(view(x, (B, D), dt), view(score, (B, D), dt), snr,
                                 param(alpha_p, alpha, B, dt), per_sample, seed, counter, first,
                                 view(out, (B, D), dt), view(out_mean, (B, D), dt),
                                 view(step, (B,), np.float64))

    def mala_accept(self, x, score, logp, prop, score_prop, logp_prop, B, D, h_p, h, seed,
                    counter, first, x_out, score_out, logp_out, accepted, work, itemsize, device,
                    stream):
        self._record("mala_accept")
        dt, f8 = self._dt(itemsize), np.float64
        _core.mala_accept(view(x, (B, D), dt), view(score, (B, D), dt), view(logp, (B,), f8),
                          view(prop, (B, D), dt), view(score_prop, (B, D), dt),
                          view(logp_prop, (B,), f8), param(h_p, h, B, dt), seed, counter, first,
                          view(x_out, (B, D), dt), view(score_out, (B, D), dt),
                          view(logp_out, (B,), f8), view(accepted, (B,), np.uint8))

    def probe_rows(self, kind, seed, counter, B, m, D, K, row0, out, work, itemsize, device,
                   stream):
        self._record("probe_rows")
        _core.probes(PROBE_KINDS[kind], view(out, (B, m, D), self._dt(itemsize)), B, m, D, K,
                     row0, seed, counter)

    def trace_moments(self, V, AV, B, m, D, active, t, moments, first, first_bad, work,
                      itemsize, device, stream):
        self._record("trace_moments")
        dt = self._dt(itemsize)
        _core.trace_moments(view(V, (B, m, D), dt), view(AV, (B, m, D), dt),
                            view(active, (B,), np.uint8) if active else None,
                            view(t, (B, m), np.float64), view(moments, (B, 3), np.float64),
                            first, view(first_bad, (B,), np.int64) if first_bad else None)

    def diagonal_moments(self, V, AV, B, m, D, count, mean, m2, itemsize, device, stream):
        self._record("diagonal_moments")
        dt = self._dt(itemsize)
        _core.diagonal_moments(view(V, (B, m, D), dt), view(AV, (B, m, D), dt), count,
                               view(mean, (B, D), np.float64), view(m2, (B, D), np.float64))

    def reduce_losses(self, rows, B, mean, out, device, stream):
        self._record("reduce_losses")
        t = _core.sum(view(rows, (B,), np.float64).copy())
        view(out, (1,), np.float64)[0] = (t / B if B else np.nan) if mean else t

    def gmm_eval(self, means, variances, log_weights, K, D, x, B, sigma_p, sigma, log_p, score,
                 div, work, itemsize, device, stream):
        self._record("gmm_eval")
        dt, f8 = self._dt(itemsize), np.float64
        _core.gmm_eval(view(means, (K, D), f8), view(variances, (K, D), f8),
                       view(log_weights, (K,), f8), view(x, (B, D), dt),
                       view(sigma_p, (B,), f8) if sigma_p else np.asarray(sigma, f8),
                       view(log_p, (B,), f8), view(score, (B, D), dt) if score else None,
                       view(div, (B,), f8) if div else None)
