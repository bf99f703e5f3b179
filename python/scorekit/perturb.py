"""Forward noising of a batch: ``x_tilde = scale * x + sigma * z``."""

from __future__ import annotations

import numpy as np

from . import _core, _gpu
from ._validate import batch_array, output_unaliased, per_sample, sample_offset, stream


def perturb(x, sigma, *, seed, counter=0, scale=None, offset=0, out=None):
    """Perturb a batch with Gaussian noise regenerated from ``(seed, counter)``.

    Computes ``scale * x + sigma * z`` with
    ``z = scorekit.normal(x.shape, seed=seed, counter=counter, dtype=x.dtype)``,
    in one pass and without storing ``z``.

    Parameters
    ----------
    x : array_like, float32 or float64, shape (B, ...)
        Clean samples. Non-contiguous inputs are accepted (copied).
    sigma : float or array_like of shape (B,)
        Noise standard deviation per sample; finite and > 0.
    seed, counter : int
        Noise stream, integers in ``[0, 2**64)``.
    scale : float or array_like of shape (B,), optional
        Signal scale (``alpha(t)`` for VP / sub-VP kernels); finite; default 1 (VE).
    offset : int
        Global index of the first sample: sample ``b`` gets the noise of sample
        ``offset + b`` of a larger batch (stream elements from ``offset * D``),
        so shards of a batch reproduce the whole.
    out : numpy.ndarray, optional
        Output of ``x``'s shape and dtype; may be ``x`` itself for an in-place update.

    Returns
    -------
    numpy.ndarray
        The perturbed batch (``out`` when given).
    """
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return _gpu.perturb(x, sigma, seed=seed, counter=counter, scale=scale, offset=offset,
                            out=out)
    x = batch_array(x, "x")
    dt = x.dtype
    batch = x.shape[0]
    sigma_a = per_sample(sigma, "sigma", batch, dt, positive=True)
    scale_a = per_sample(1.0 if scale is None else scale, "scale", batch, dt)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, batch, x.size // batch if batch else 0)
    out, (x,), (sigma_a, scale_a) = output_unaliased(out, x.shape, dt, (x,), (sigma_a, scale_a))
    _core.perturb(x, scale_a, sigma_a, seed, counter, offset, out)
    return out
