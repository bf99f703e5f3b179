"""Divergence of a black-box function by finite-difference Jacobian-vector products."""

from __future__ import annotations

import contextlib

import numpy as np

from . import _gpu
from ._validate import batch_array, choice, count, per_sample, sample_offset, stream
from .probes import PROBE_KINDS
from .trace import _check_finite, _HostTrace, _product

_METHODS = ("central", "exact")


def divergence(fn, x, *, num_probes=1, kind="gaussian", seed=None, counter=0, offset=0,
               method="central", step=None):
    """Per-sample divergence ``tr(d fn / d x)`` of a function at ``x``.

    Parameters
    ----------
    fn : callable
        Maps a ``(B, ...)`` array to an array of the same shape, row ``b``
        depending on row ``b`` only (a score or an ODE drift at a fixed time).
    x : array_like, float32 or float64, shape (B, ...)
    num_probes : int
        Probes per sample for "central" (``2 * num_probes`` calls of ``fn``).
    kind : {"gaussian", "rademacher", "sphere"}
        Probe distribution (:func:`scorekit.probes`).
    seed, counter : int
        Probe stream (required for "central"). Probe ``k`` of sample ``b`` is
        stream row ``b * num_probes + k``: the same seed gives the same probes
        at every call, e.g. along one ODE solve.
    offset : int
        Global index of the first sample (probes of samples ``offset + b``).
    method : {"central", "exact"}
        "central": Hutchinson's estimate ``mean_k v_k . (fn(x + h v_k) -
        fn(x - h v_k)) / (2 h)``. "exact": the trace itself from the ``D``
        basis vectors, ``sum_j (fn(x + h e_j) - fn(x - h e_j))_j / (2 h)``
        (``2 D`` calls; exact for a linear or quadratic ``fn`` up to rounding).
    step : float or array_like of shape (B,), optional
        Finite-difference step ``h`` per sample; default
        ``eps**(1/3) * max(1, rms(x_b))`` with ``eps`` of x's dtype.

    Returns
    -------
    numpy.ndarray
        float64 ``(B,)`` divergences.

    A PyTorch CUDA tensor or CuPy array ``x`` keeps the work on its GPU: ``fn``
    receives and returns arrays of that framework on that device, the probes
    and sums are computed there (the CPU's bits), and the (B,) result comes
    back to the host; the default step reads ``x`` on the host once.
    """
    ops = _ops(x)
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    method = choice(method, "method", _METHODS)
    kind = choice(kind, "kind", PROBE_KINDS)
    K = count(num_probes, "num_probes")
    if method == "central":
        if seed is None:
            raise ValueError("method 'central' draws probes: pass seed=")
        seed, counter = stream(seed, counter)
    B, rest, dtype = ops.shape[0], ops.shape[1:], ops.dtype
    D = int(np.prod(rest, dtype=np.int64))
    if step is None:
        flat = ops.host_rows(D)
        h = (np.finfo(dtype).eps ** (1 / 3) * np.maximum(1.0, _rms(flat))).astype(dtype)
    else:
        h = np.broadcast_to(per_sample(ops.host_param(step, "step"), "step", B, dtype,
                                       positive=True), (B,))
    if B == 0 or D == 0:
        return np.zeros(B)
    offset = sample_offset(offset, B, D, K) if method == "central" else 0
    with ops.device():
        return (_exact(ops, fn, h, B, D) if method == "exact"
                else _central(ops, fn, h, kind, K, D, offset, seed, counter))


def _central(ops, fn, h, kind, K, D, offset, seed, counter):
    # the K probes of each sample as one round of the trace estimators' arrays (host or GPU)
    x, arrays, B = ops.x, ops.trace_arrays, ops.shape[0]
    h_col = ops.column(h)
    V = arrays.probes(kind, B, K, D, K, offset * K, seed, counter)
    JV = ops.new_like(V)
    for k in range(K):
        v = ops.probe(V, k)
        ops.set_probe(JV, k, (ops.call(fn, x + h_col * v) - ops.call(fn, x - h_col * v))
                      / (2 * h_col))
    moments, first_bad = arrays.moments(B), arrays.first_bad(B)
    arrays.trace_moments(V, JV, np.ones(B, dtype=np.uint8), moments, 0, first_bad)
    _check_finite(arrays.host(first_bad)[:B], [0], "fn")
    return arrays.host(moments)[:B, 1].copy()


def _exact(ops, fn, h, B, D):
    x = ops.x
    flat = ops.rows(x, B, D)
    hv = ops.vector(h)
    h2 = 2 * ops.float64(hv)
    total = ops.zeros(B)
    for j in range(D):
        plus, minus = ops.copy(flat), ops.copy(flat)
        plus[:, j] += hv
        minus[:, j] -= hv
        diff = (ops.rows(ops.call(fn, plus.reshape(x.shape)), B, D)[:, j]
                - ops.rows(ops.call(fn, minus.reshape(x.shape)), B, D)[:, j])
        total += ops.float64(diff) / h2
    total = ops.to_host(total)
    if not np.all(np.isfinite(total)):
        raise ValueError("fn returned non-finite values")
    return total


class _HostOps:
    """The array operations of divergence on NumPy arrays (the CUDA version is
    scorekit._gpu.DivergenceOps: probes, fn's calls and the sums on x's GPU)."""

    def __init__(self, x):
        self.x = batch_array(x, "x")
        self.shape, self.dtype = self.x.shape, self.x.dtype
        self.trace_arrays = _HostTrace(self.shape, self.dtype)

    def host_rows(self, D):
        return self.x.reshape(self.shape[0], D)

    @staticmethod
    def host_param(value, name):
        return value

    def column(self, h):
        return h.reshape((self.shape[0],) + (1,) * (len(self.shape) - 1))

    @staticmethod
    def new_like(V):
        return np.empty_like(V)

    @staticmethod
    def probe(V, k):
        return V[:, k]

    @staticmethod
    def set_probe(JV, k, value):
        JV[:, k] = value

    @staticmethod
    def call(fn, y):
        return _call(fn, y)

    @staticmethod
    def rows(a, B, D):
        return a.reshape(B, D)

    @staticmethod
    def vector(h):
        return h

    @staticmethod
    def float64(a):
        return a.astype(np.float64)

    @staticmethod
    def zeros(B):
        return np.zeros(B)

    @staticmethod
    def copy(a):
        return a.copy()

    @staticmethod
    def to_host(a):
        return a

    @staticmethod
    def device():
        return contextlib.nullcontext()


def _ops(x):
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return _gpu.DivergenceOps(x)
    return _HostOps(x)


def _rms(flat):
    """Root-mean-square of each row, without overflow for huge values."""
    big = np.max(np.abs(flat), axis=1, initial=0.0).astype(np.float64)
    scale = np.where(big > 0, big, 1.0)
    with np.errstate(invalid="ignore"):
        return scale * np.sqrt(np.mean((flat / scale[:, None]) ** 2, axis=1)) \
            if flat.shape[1] else np.zeros(flat.shape[0])


def _call(fn, x):
    x.flags.writeable = False
    return _product(fn, x, x.dtype, "fn")
