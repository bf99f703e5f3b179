"""Unadjusted Langevin step: ``x + h * score + sqrt(2 h) * z``."""

from __future__ import annotations

import numpy as np

from . import _core, _gpu
from ._validate import (batch_array, output_unaliased, per_sample, same_dtype, same_shape,
                        sample_offset, stream)


def langevin_step(x, score, step_size, *, seed, counter=0, offset=0, out=None):
    """One unadjusted Langevin step with noise regenerated from ``(seed, counter)``.

    Computes ``x + step_size * score + sqrt(2 * step_size) * z`` with
    ``z = scorekit.normal(x.shape, seed=seed, counter=counter, dtype=x.dtype)``,
    in one pass over ``x`` and ``score``.

    Parameters
    ----------
    x : array_like, float32 or float64, shape (B, ...)
        Current samples.
    score : array_like, same shape and dtype as ``x``
        Score estimate at ``x``.
    step_size : float or array_like of shape (B,)
        Step size ``h`` per sample; finite and >= 0 (0 gives ``x + 0 * score``:
        ``x`` itself wherever ``score`` is finite).
    seed, counter : int
        Noise stream, integers in ``[0, 2**64)``. Use a new counter per step.
    offset : int
        Global index of the first sample: sample ``b`` gets the noise of sample
        ``offset + b`` of a larger batch (stream elements from ``offset * D``),
        so shards of a batch reproduce the whole.
    out : numpy.ndarray, optional
        Output of ``x``'s shape and dtype; ``out=x`` updates in place.

    Returns
    -------
    numpy.ndarray
        The next samples (``out`` when given).
    """
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return _gpu.langevin_step(x, score, step_size, seed=seed, counter=counter, offset=offset,
                                  out=out)
    x = batch_array(x, "x")
    dt = x.dtype
    score = batch_array(score, "score")
    same_dtype(dt, score=score)
    same_shape(x.shape, score=score)
    step = per_sample(step_size, "step_size", x.shape[0], dt, nonnegative=True, doubled=True)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, x.shape[0], x.size // x.shape[0] if x.shape[0] else 0)
    out, (x, score), (step,) = output_unaliased(out, x.shape, dt, (x, score), (step,))
    _core.langevin_step(x, score, step, seed, counter, offset, out)
    return out
