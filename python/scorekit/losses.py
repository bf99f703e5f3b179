"""Denoising score matching loss, fused with noise regeneration and its gradient."""

from __future__ import annotations

import numpy as np

from . import _core, _gpu
from ._validate import (batch_array, batch_scale, no_stream_with_noise, per_sample,
                        reduction_args, same_dtype, same_shape, sample_offset, stream)
_WEIGHTS = ("sigma2", "none")


def dsm_loss(score, sigma, *, seed=None, counter=0, noise=None, weight="sigma2",
             reduction="mean", return_grad=True, offset=0):
    """Denoising score matching loss (Vincent 2011) with NCSN weighting.

    For each sample ``b``::

        L_b = 0.5 * w_b * sum_j (score[b, j] + z[b, j] / sigma_b) ** 2

    where ``z`` is the noise that :func:`scorekit.perturb` drew with the same
    ``(seed, counter)`` (regenerated in the kernel, never stored), or the
    ``noise`` array. One pass over ``score``: noise, residual, gradient and the
    per-sample sums are fused. The kernel forms ``q = sigma_b * score + z`` and
    computes ``L_b = 0.5 * (w_b / sigma_b**2) * sum q**2`` (the same loss), so a
    tiny sigma does not overflow ``z / sigma``, nor (with the default weight) a huge
    one ``sigma**2``; with another weight ``sigma * score`` must stay finite (see the
    README's "Arrays, precision and errors"). Sums accumulate
    in float64 in a fixed order, so results are identical for any number of threads.

    Parameters
    ----------
    score : array_like, float32 or float64, shape (B, ...)
        Model output at the perturbed samples.
    sigma : float or array_like of shape (B,)
        Noise level per sample; finite and > 0.
    seed, counter : int, optional
        Noise stream (integers in ``[0, 2**64)``). Give exactly one of ``seed``
        and ``noise``.
    noise : array_like, optional
        The standard normal noise itself, same shape and dtype as ``score``.
    weight : {"sigma2", "none"} or float or array_like of shape (B,)
        ``w_b``: ``sigma_b**2`` (NCSN / score-SDE default), 1, or given values
        (finite, >= 0; e.g. ``g(t)**2`` for likelihood weighting).
    reduction : {"mean", "sum", "none"}
        Mean over the batch, sum, or the per-sample losses.
    return_grad : bool
        Also return the gradient with respect to ``score``.
    offset : int
        With ``seed``: global index of the first sample, as in
        :func:`scorekit.perturb` (the loss of a shard of a batch uses the
        noise that perturbed that shard).

    Returns
    -------
    loss : float or numpy.ndarray
        A Python float for "mean" and "sum" (an empty batch gives nan for
        "mean" and 0.0 for "sum"; with a CUDA ``score`` within
        :func:`scorekit.device_losses`, the same value as a 0-d float64 device
        array); for "none" a (B,) array of score's dtype.
    grad : numpy.ndarray
        Only when ``return_grad``: ``d loss / d score``, score's shape and dtype;
        ``w_b * (score + z / sigma_b)``, computed as ``(w_b / sigma_b) * q``,
        divided by B for "mean". For "none"
        row b holds ``d L_b / d score[b]``.
    """
    if type(score) is not np.ndarray and _gpu.on_cuda(score, "score"):
        return _gpu.dsm_loss(score, sigma, seed=seed, counter=counter, noise=noise, weight=weight,
                             reduction=reduction, return_grad=return_grad, offset=offset,
                             weights=_WEIGHTS)
    score = batch_array(score, "score")
    dt = score.dtype
    batch = score.shape[0]
    if (seed is None) == (noise is None):
        raise ValueError("dsm_loss: pass exactly one of seed= and noise=")
    if noise is not None:
        noise = batch_array(noise, "noise")
        same_dtype(dt, noise=noise)
        same_shape(score.shape, noise=noise)
        no_stream_with_noise(counter, offset)
        seed_v = counter_v = offset = 0
    else:
        seed_v, counter_v = stream(seed, counter)
        offset = sample_offset(offset, batch, score.size // batch if batch else 0)
    sigma_a = per_sample(sigma, "sigma", batch, dt, positive=True)
    if isinstance(weight, str):
        if weight not in _WEIGHTS:
            raise ValueError(f"weight must be 'sigma2', 'none', a number or a (B,) array, "
                             f"got {weight!r}")
        weight_a = None if weight == "sigma2" else np.asarray(1.0, dtype=dt)
    else:
        weight_a = per_sample(weight, "weight", batch, dt, nonnegative=True)
    reduction, return_grad = reduction_args(reduction, return_grad)

    row_loss = np.empty(batch, dtype=np.float64)
    grad = np.empty(score.shape, dtype=dt) if return_grad else None
    _core.dsm_loss(score, noise, sigma_a, weight_a, batch_scale(reduction, batch), seed_v,
                   counter_v, offset, row_loss, grad)

    if reduction == "none":
        loss = row_loss.astype(dt)
    else:
        total = _core.sum(row_loss)
        loss = total if reduction == "sum" else (total / batch if batch else float("nan"))
    return (loss, grad) if return_grad else loss
