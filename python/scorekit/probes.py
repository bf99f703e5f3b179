"""Random probe vectors for trace estimation and sliced score matching."""

from __future__ import annotations

import math

import numpy as np

from . import _core, _gpu
from ._validate import (PROBE_KINDS, choice, count, out_dtype, output, sample_offset, shape_arg,
                        stream)


def probes(shape, *, kind, seed, counter=0, dtype=None, num_probes=None, offset=0, out=None):
    """Probe vectors ``v`` with ``E[v v^T] = I``, one (or ``num_probes``) per sample.

    Parameters
    ----------
    shape : tuple of int
        ``(B, ...)``: B samples, each probe of ``D = prod(shape[1:])`` elements.
    kind : {"rademacher", "gaussian", "sphere"}
        Random signs ±1; standard normals; or each probe's normals rescaled to
        Euclidean norm ``sqrt(D)`` (uniform on that sphere). Every kind has
        identity second moment, so ``v^T A v`` is an unbiased estimate of
        ``tr(A)`` with no further scaling.
    seed, counter : int
        Noise stream, integers in ``[0, 2**64)``.
    dtype : {numpy.float32, numpy.float64}, optional
        Defaults to ``out.dtype`` when ``out`` is given, else float32.
    num_probes : int, optional
        ``K`` probes per sample: the result has shape ``(B, K, ...)``.
    offset : int
        Global index of the first sample: sample ``b`` gets the probes of
        sample ``offset + b`` of a larger batch (for shards of a batch).
    out : numpy.ndarray, optional
        C-contiguous, writeable array of the result's shape and dtype to fill.

    Returns
    -------
    numpy.ndarray
        Viewed as ``B * K`` rows of ``D`` elements (``K = 1`` without
        ``num_probes``), row ``r = b * K + k`` (probe ``k`` of sample ``b``)
        holds elements ``[r * D, (r + 1) * D)`` (``r = (offset + b) * K + k``
        with an offset) of the stream ``(seed,
        counter)``: those of :func:`scorekit.rademacher` or
        :func:`scorekit.normal` of the same dtype, and for "sphere" the
        normals times ``sqrt(D / sum(g**2))`` (factor and product in float64,
        rounded once). Kernels that take ``seed`` regenerate the same probes.
    """
    kind = choice(kind, "kind", PROBE_KINDS)
    if out is not None and type(out) is not np.ndarray and _gpu.on_cuda(out, "out"):
        return _gpu.probes(kind, shape, seed=seed, counter=counter, dtype=dtype,
                           num_probes=num_probes, offset=offset, out=out)
    shape = shape_arg(shape)
    if not shape:
        raise ValueError("shape must have at least one axis (B, ...), got ()")
    seed, counter = stream(seed, counter)
    K = 1 if num_probes is None else count(num_probes, "num_probes")
    out_shape = shape if num_probes is None else (shape[0], K) + shape[1:]
    out = output(out, out_shape, out_dtype(dtype, out))
    D = math.prod(shape[1:])
    offset = sample_offset(offset, shape[0], D, K)
    draw(kind, out, shape[0], K, D, K, offset * K, seed, counter)
    return out



def draw(kind, out, B, m, D, K, k0, seed, counter):
    """Probes ``k0 .. k0 + m`` of ``B`` samples (layout ``K`` per sample) into ``out``."""
    _core.probes(kind, out, B, m, D, K, k0, seed, counter)
    return out
