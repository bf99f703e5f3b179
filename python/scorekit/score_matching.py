"""Sliced and implicit score matching losses, fused with their gradients."""

from __future__ import annotations

import numpy as np

from . import _core, _gpu
from ._validate import (batch_array, batch_scale, choice, flag, probe_count, reduction_args,
                        same_dtype, sample_offset, stream)
from .probes import PROBE_KINDS


def ssm_loss(score, jvp, *, seed, counter=0, kind="gaussian", variance_reduction=True,
             reduction="mean", return_grad=True, offset=0):
    """Sliced score matching (Song et al. 2019) with probes regenerated from the seed.

    For sample ``b`` with score ``s`` (flattened, ``D`` elements) and probes
    ``v_k`` drawn by ``scorekit.probes(score.shape, kind=kind, seed=seed,
    counter=counter, dtype=score.dtype, num_probes=K)``::

        SSM:    L_b = mean_k [ v_k . (J v_k) + (v_k . s)**2 / 2 ]
        SSM-VR: L_b = mean_k [ v_k . (J v_k) ] + |s|**2 / 2

    Probes have ``E[v v^T] = I`` for every kind ("sphere" probes have norm
    ``sqrt(D)``), so both are unbiased for ``tr(J) + |s|^2 / 2`` (the implicit
    score matching objective) with no rescaling.

    Parameters
    ----------
    score : array_like, float32 or float64, shape (B, ...)
        The model's score at the samples.
    jvp : array_like, same dtype
        ``J v`` (the score's Jacobian times each probe): of score's shape for
        one probe per sample, or ``(B, K) + score.shape[1:]`` for ``K``.
    seed, counter : int
        The probes' stream.
    kind : {"gaussian", "rademacher", "sphere"}
    variance_reduction : bool
        SSM-VR (True) or SSM.
    reduction : {"mean", "sum", "none"}
    return_grad : bool
    offset : int
        Global index of the first sample: the probes of samples ``offset + b``
        (as ``scorekit.probes(..., offset=offset)``), for shards of a batch.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for "mean" (nan for an empty batch) and "sum" (with a CUDA
        ``score`` within :func:`scorekit.device_losses`, the same value as a
        0-d float64 device array); for "none" the (B,) losses in score's
        dtype. Sums run in float64 in a fixed order.
    grad_score, grad_jvp : numpy.ndarray
        Only with ``return_grad``: gradients of the reduced loss,
        ``d/d jvp = v / K`` and ``d/d score = mean_k (v_k . s) v_k`` (SSM) or
        ``s`` (SSM-VR), times ``1/B`` for "mean".
    """
    if type(score) is not np.ndarray and _gpu.on_cuda(score, "score"):
        return _gpu.ssm_loss(score, jvp, seed=seed, counter=counter, kind=kind,
                             variance_reduction=variance_reduction, reduction=reduction,
                             return_grad=return_grad, offset=offset)
    score = batch_array(score, "score")
    jvp = batch_array(jvp, "jvp")
    same_dtype(score.dtype, jvp=jvp)
    B = score.shape[0]
    K = probe_count(score.shape, jvp.shape)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, score[0].size if B else 0, K)
    kind = choice(kind, "kind", PROBE_KINDS)
    vr = flag(variance_reduction, "variance_reduction")
    reduction, return_grad = reduction_args(reduction, return_grad)
    row_loss = np.empty(B)
    grad_score = np.empty_like(score) if return_grad else None
    grad_jvp = np.empty_like(jvp) if return_grad else None
    _core.ssm_loss(kind, score, jvp, K, vr, batch_scale(reduction, B), seed, counter, offset,
                   row_loss, grad_score, grad_jvp)
    loss = _reduce(row_loss, reduction, score.dtype)
    return (loss, grad_score, grad_jvp) if return_grad else loss


def ism_loss(score, jac_trace, *, reduction="mean", return_grad=True):
    """Implicit score matching (Hyvärinen 2005): ``L_b = |s_b|**2 / 2 + tr(J_b)``.

    Parameters
    ----------
    score : array_like, float32 or float64, shape (B, ...)
    jac_trace : array_like, shape (B,), same dtype
        The trace of each score's Jacobian (exact, or an estimate such as
        :func:`scorekit.hutchinson`'s).
    reduction : {"mean", "sum", "none"}
    return_grad : bool

    Returns
    -------
    loss : float or numpy.ndarray
        As in :func:`ssm_loss`.
    grad_score, grad_jac_trace : numpy.ndarray
        Only with ``return_grad``: ``s`` and ones, times ``1/B`` for "mean".
    """
    if type(score) is not np.ndarray and _gpu.on_cuda(score, "score"):
        return _gpu.ism_loss(score, jac_trace, reduction=reduction, return_grad=return_grad)
    score = batch_array(score, "score")
    jac_trace = batch_array(jac_trace, "jac_trace")
    same_dtype(score.dtype, jac_trace=jac_trace)
    B = score.shape[0]
    if jac_trace.shape != (B,):
        raise ValueError(f"jac_trace must have shape (B,) = ({B},), got {jac_trace.shape}")
    reduction, return_grad = reduction_args(reduction, return_grad)
    scale = batch_scale(reduction, B)
    row_loss = np.empty(B)
    grad_score = np.empty_like(score) if return_grad else None
    _core.ism_loss(score, jac_trace, scale, row_loss, grad_score)
    loss = _reduce(row_loss, reduction, score.dtype)
    if not return_grad:
        return loss
    return loss, grad_score, np.full(B, scale, dtype=score.dtype)


def _reduce(row_loss, reduction, dtype):
    if reduction == "none":
        return row_loss.astype(dtype)
    total = _core.sum(row_loss)
    if reduction == "sum":
        return total
    return total / row_loss.shape[0] if row_loss.shape[0] else float("nan")
