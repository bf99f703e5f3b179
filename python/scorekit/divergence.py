"""Divergence of a black-box function by finite-difference Jacobian-vector products."""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import batch_array, choice, count, per_sample, sample_offset, stream
from .probes import PROBE_KINDS, draw
from .trace import _product

_METHODS = ("central", "exact")


def divergence(fn, x, *, num_probes=1, kind="gaussian", seed=None, counter=0, offset=0,
               method="central", step=None):
    """Per-sample divergence ``tr(d fn / d x)`` of a NumPy function at ``x``.

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
    """
    x = batch_array(x, "x")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    method = choice(method, "method", _METHODS)
    kind = choice(kind, "kind", PROBE_KINDS)
    K = count(num_probes, "num_probes")
    if method == "central":
        if seed is None:
            raise ValueError("method 'central' draws probes: pass seed=")
        seed, counter = stream(seed, counter)
    B, rest = x.shape[0], x.shape[1:]
    D = int(np.prod(rest, dtype=np.int64))
    flat = x.reshape(B, D)
    if step is None:
        h = (np.finfo(x.dtype).eps ** (1 / 3) * np.maximum(1.0, _rms(flat))).astype(x.dtype)
    else:
        h = np.broadcast_to(per_sample(step, "step", B, x.dtype, positive=True), (B,))
    if B == 0 or D == 0:
        return np.zeros(B)
    h_col = h.reshape((B,) + (1,) * len(rest))
    if method == "exact":
        return _exact(fn, x, flat, h, B, D)
    offset = sample_offset(offset, B, D, K)
    V = draw(kind, np.empty((B, K) + rest, x.dtype), B, K, D, K, offset * K, seed, counter)
    JV = np.empty_like(V)
    for k in range(K):
        v = V[:, k]
        JV[:, k] = (_call(fn, x + h_col * v) - _call(fn, x - h_col * v)) / (2 * h_col)
    t = np.empty((B, K))
    moments = np.zeros((B, 3))
    _core.trace_moments(V, JV, None, t, moments)
    if not np.all(np.isfinite(t)):
        raise ValueError("fn returned non-finite values")
    return moments[:, 1].copy()


def _exact(fn, x, flat, h, B, D):
    total = np.zeros(B)
    rows = np.arange(B)
    for j in range(D):
        plus, minus = flat.copy(), flat.copy()
        plus[:, j] += h
        minus[:, j] -= h
        diff = (_call(fn, plus.reshape(x.shape)).reshape(B, D)[:, j]
                - _call(fn, minus.reshape(x.shape)).reshape(B, D)[:, j])
        total += diff.astype(np.float64) / (2 * h[rows].astype(np.float64))
    if not np.all(np.isfinite(total)):
        raise ValueError("fn returned non-finite values")
    return total


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
