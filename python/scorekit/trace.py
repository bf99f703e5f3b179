"""Hutchinson trace and diagonal estimation over a batch of operators.

Every estimator takes ``matvec``, a function that maps a ``(B, ...)`` array of
vectors (one per sample) to the ``(B, ...)`` array of products ``A_b v_b``; with
``batched=True`` it maps ``(B, m, ...)`` (``m`` vectors per sample) to the same
shape instead, which saves Python calls. Probes come from
:func:`scorekit.probes`: probe ``k`` of sample ``b`` is row ``b * K + k`` of
the stream, with ``K`` the probe budget per sample, so results are
reproducible from the seed whatever the block size or stopping point.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _core, _gpu
from ._validate import choice, count, dtype_arg, flag, nonnegative_float, shape_arg, stream
from .probes import PROBE_KINDS, draw


class TraceEstimate(NamedTuple):
    """Per-sample trace estimates: float64 ``(B,)`` arrays."""

    estimate: np.ndarray
    stderr: np.ndarray
    num_matvecs: np.ndarray  # products A v used per sample (for Hutchinson: probes)


class DiagonalEstimate(NamedTuple):
    """Per-element diagonal estimates: float64 arrays of the operator's shape."""

    estimate: np.ndarray
    stderr: np.ndarray


def hutchinson(matvec, shape, *, num_probes, kind="rademacher", seed, counter=0, atol=0.0,
               rtol=0.0, max_probes=None, block=None, batched=False, dtype=np.float64,
               like=None):
    """Hutchinson's estimate of ``tr(A_b)`` for each sample, with standard errors.

    ``t = v^T A v`` over probes ``v`` (:func:`scorekit.probes`); the estimate
    is the mean of the samples ``t`` and the standard error their standard
    deviation (ddof=1) over ``sqrt(n)``. Dot products, running means and
    variances are computed in fused kernels (float64, fixed order).

    Parameters
    ----------
    matvec : callable
        ``(B, ...)`` probes to ``(B, ...)`` products (``(B, m, ...)`` with
        ``batched=True``). Its input is read-only; its output must be a float
        array of the input's shape, finite.
    shape : tuple of int
        ``(B, ...)``: the batch and the shape of one vector.
    num_probes : int
        Probes per sample. With a tolerance: the number drawn before the first
        stopping check (>= 2); later checks follow every ``block`` probes.
    kind : {"rademacher", "gaussian", "sphere"}
    seed, counter : int
        Probe stream.
    atol, rtol : float
        Stop a sample once ``stderr <= atol + rtol * |estimate|`` (checked
        after every block once ``num_probes`` probes are in). 0 and 0 (the
        default): exactly ``num_probes`` probes.
    max_probes : int, optional
        Cap per sample with a tolerance (default ``10 * num_probes``). It also
        fixes the layout ``K``: probe ``k`` of sample ``b`` is stream row
        ``b * K + k`` with ``K = max_probes`` (``num_probes`` when neither a
        tolerance nor ``max_probes`` is given).
    block : int, optional
        Probes drawn and handed to ``matvec`` per round (default
        ``min(num_probes, 32)``); memory is ``B * block`` vectors.
    batched : bool
        ``matvec`` takes ``(B, m, ...)``.
    dtype : {numpy.float64, numpy.float32}
        Probe dtype (what ``matvec`` receives).
    like : array, optional
        A PyTorch CUDA tensor or CuPy array: probes are drawn on its GPU and
        ``matvec`` receives and returns arrays of that framework there; the
        samples and moments are computed there too (the same bits as on the
        CPU). The host reads the device only at the stopping checks and at the
        end, so a round does not wait for the one before it. Non-finite
        products are found there as on the CPU and raise the same error, but at
        the next stopping check or the end rather than after their round
        (``matvec`` is called for the rounds in between).

    Returns
    -------
    TraceEstimate
        ``estimate``, ``stderr`` (nan with one probe) and ``num_matvecs``
        (probes in each sample's estimate) per sample.

    Notes
    -----
    ``matvec`` receives the whole batch every round, since row ``b`` of its
    input belongs to operator ``b``; rows of samples that have stopped are
    ignored (and not checked). A sample that stops after ``n`` probes has the
    estimate of a fixed run of ``n`` probes with the same ``max_probes``.
    """
    B, D, rest, dt, kind, seed, counter = _setup(shape, kind, seed, counter, dtype)
    n0 = count(num_probes, "num_probes")
    atol = nonnegative_float(atol, "atol")
    rtol = nonnegative_float(rtol, "rtol")
    adaptive = atol > 0 or rtol > 0
    if adaptive and n0 < 2:
        raise ValueError("num_probes must be >= 2 when a tolerance is set "
                         "(a standard error needs two probes)")
    if max_probes is None:
        K = 10 * n0 if adaptive else n0
    else:
        K = count(max_probes, "max_probes")
        if K < n0:
            raise ValueError(f"max_probes must be >= num_probes = {n0}, got {K}")
    limit = K if adaptive else n0
    check_layout(B, K, D, "max_probes" if max_probes is not None else "num_probes")
    block = min(n0, 32) if block is None else count(block, "block")
    batched = flag(batched, "batched")

    arrays = _trace_arrays(like, (B,) + rest, dt)
    moments = arrays.moments(B)  # count, mean, m2 per sample
    first_bad = arrays.first_bad(B)  # each sample's first non-finite probe, or -1
    starts = []  # the first probe of each round
    active = np.ones(B, dtype=np.uint8)
    used = 0
    while used < limit and active.any():
        m = min(block, limit - used, n0 - used if used < n0 else limit)  # a check at n0
        V = arrays.probes(kind, B, m, D, K, used, seed, counter)
        AV = arrays.apply(matvec, V, batched)
        arrays.trace_moments(V, AV, active, moments, used, first_bad)
        starts.append(used)
        used += m
        checked = adaptive and used >= n0
        if checked or arrays.checks_each_round:
            _check_finite(arrays.host(first_bad)[:B], starts)
        if checked:
            host = arrays.host(moments)[:B]
            active[_stderr(host) <= atol + rtol * np.abs(host[:, 1])] = 0
    _check_finite(arrays.host(first_bad)[:B], starts)
    host = arrays.host(moments)[:B]
    return TraceEstimate(host[:, 1].copy(), _stderr(host), host[:, 0].astype(np.int64))


def diagonal(matvec, shape, *, num_probes, kind="rademacher", seed, counter=0, block=None,
             batched=False, dtype=np.float64, like=None):
    """Estimate of the diagonal of each ``A_b``: the mean of ``v * (A v)`` over probes.

    Parameters as in :func:`hutchinson` (a fixed budget of ``num_probes``;
    probe ``k`` of sample ``b`` is stream row ``b * num_probes + k``).
    Rademacher probes are exact for a diagonal ``A``.

    Returns
    -------
    DiagonalEstimate
        ``estimate`` and ``stderr`` (standard deviation over probes, ddof=1,
        over ``sqrt(num_probes)``; nan with one probe), float64, of ``shape``
        (arrays of ``like``'s framework on its GPU with ``like``: see
        :func:`hutchinson`).
    """
    B, D, rest, dt, kind, seed, counter = _setup(shape, kind, seed, counter, dtype)
    K = count(num_probes, "num_probes")
    check_layout(B, K, D, "num_probes")
    block = min(K, 32) if block is None else count(block, "block")
    batched = flag(batched, "batched")
    arrays = _trace_arrays(like, (B,) + rest, dt)
    mean, m2 = arrays.diagonal_state(B)
    for used in range(0, K, block):
        m = min(block, K - used)
        V = arrays.probes(kind, B, m, D, K, used, seed, counter)
        AV = arrays.apply(matvec, V, batched)
        arrays.diagonal_moments(V, AV, float(used), mean, m2)
    return DiagonalEstimate(*arrays.diagonal_result(mean, m2, K))


class _HostTrace:
    """The array operations of the estimators on NumPy arrays (the CUDA version is
    scorekit._gpu.TraceArrays)."""

    checks_each_round = True  # reading first_bad costs nothing here

    def __init__(self, shape: tuple, dtype):
        self.shape, self.dtype = shape, dtype

    def probes(self, kind, B, m, D, K, k0, seed, counter):
        return draw(kind, np.empty((B, m) + self.shape[1:], self.dtype), B, m, D, K, k0, seed,
                    counter)

    @staticmethod
    def apply(matvec, V, batched, name="matvec"):
        return apply(matvec, V, batched, name)

    @staticmethod
    def moments(B):
        return np.zeros((B, 3))

    @staticmethod
    def first_bad(B):
        return np.full(B, -1, dtype=np.int64)

    @staticmethod
    def trace_moments(V, AV, active, moments, first, first_bad):
        t = np.empty(V.shape[:2])
        _core.trace_moments(V, AV, active, t, moments, first, first_bad)

    @staticmethod
    def host(arr):
        return arr

    def diagonal_state(self, B):
        return np.zeros((B,) + self.shape[1:]), np.zeros((B,) + self.shape[1:])

    @staticmethod
    def diagonal_moments(V, AV, count, mean, m2):
        _core.diagonal_moments(V, AV, count, mean, m2)
        if not np.all(np.isfinite(mean)):
            raise ValueError("matvec returned non-finite values")

    @staticmethod
    def diagonal_result(mean, m2, n):
        return mean, standard_error(m2, n)


def _trace_arrays(like, shape, dtype):
    if like is None:
        return _HostTrace(shape, dtype)
    return _gpu.TraceArrays(like, shape, dtype)  # checks that like is a CUDA array


def _setup(shape, kind, seed, counter, dtype):
    shape = shape_arg(shape)
    if not shape:
        raise ValueError("shape must have at least one axis (B, ...), got ()")
    kind = choice(kind, "kind", PROBE_KINDS)
    seed, counter = stream(seed, counter)
    return shape[0], math.prod(shape[1:]), shape[1:], dtype_arg(dtype), kind, seed, counter


def check_layout(B, K, D, name):
    """Probe rows b * K + k of D elements must index the stream below 2**63."""
    if B * K * max(D, 1) >= 2**63:
        raise ValueError(f"{name} = {K} is too large: B * {name} * D = {B} * {K} * {D} "
                         "must be below 2**63")


def apply(matvec, V, batched, name="matvec"):
    """``A v`` for the ``(B, m, ...)`` vectors ``V``, as a contiguous array of V's dtype."""
    if not callable(matvec):
        raise TypeError(f"{name} must be callable, got {type(matvec).__name__}")
    view = V.view()
    view.flags.writeable = False
    if batched:
        return _product(matvec, view, V.dtype, name)
    AV = np.empty_like(V)
    for i in range(V.shape[1]):
        v = np.ascontiguousarray(V[:, i]) if V.shape[1] > 1 else view[:, 0]
        v.flags.writeable = False
        AV[:, i] = _product(matvec, v, V.dtype, name)
    return AV


def _product(matvec, v, dtype, name):
    res = matvec(v)
    if isinstance(res, np.ma.MaskedArray):
        raise TypeError(f"{name} returned a masked array, which is not supported")
    res = np.asarray(res)
    if res.shape != v.shape:
        raise ValueError(f"{name} returned shape {res.shape}, expected {v.shape}")
    if res.dtype.kind != "f" or res.dtype.itemsize < 4:
        raise TypeError(f"{name} must return a float32 or float64 array, got dtype {res.dtype}")
    return np.ascontiguousarray(res, dtype=dtype)


def first_nonfinite(first_bad, starts):
    """(sample, probe) of the first non-finite sample as a check after every round
    would meet it: in the earliest round that has one, the lowest sample, its first
    probe there; None if there is none. ``first_bad`` holds each sample's first
    non-finite probe (-1: none), ``starts`` the first probe of each round."""
    bad = np.flatnonzero(first_bad >= 0)
    if not bad.size:
        return None
    rounds = np.searchsorted(np.asarray(starts), first_bad[bad], side="right")
    b = bad[np.argmin(rounds)]
    return int(b), int(first_bad[b])


def _check_finite(first_bad, starts, name="matvec"):
    where = first_nonfinite(first_bad, starts)
    if where is not None:
        raise ValueError(f"{name} returned non-finite values (sample {where[0]}, "
                         f"probe {where[1]})")


def standard_error(m2, n):
    """``std(ddof=1) / sqrt(n)`` from Welford's ``m2`` over ``n`` samples; nan where n < 2."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, np.sqrt(m2 / (n - 1) / n), np.nan)


def _stderr(moments):
    return standard_error(moments[:, 2], moments[:, 0])
