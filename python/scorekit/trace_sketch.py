"""Variance-reduced trace estimators: Hutch++ and XTrace, per sample.

Both spend a budget of ``num_matvecs`` products per sample and use a low-rank
sketch of each ``A_b`` (QR factorisations by NumPy's LAPACK, batched over the
samples), so their error falls much faster than Hutchinson's on matrices with
a decaying spectrum. ``matvec`` is as in :func:`scorekit.hutchinson`.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import count, flag
from .probes import draw
from .trace import TraceEstimate, _setup, apply, check_layout, standard_error


def hutchpp(matvec, shape, *, num_matvecs, kind="rademacher", seed, counter=0, batched=False,
            dtype=np.float64):
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021) for each sample.

    With ``m = num_matvecs`` (>= 3): ``s = m // 3`` sketch probes ``S`` and
    ``g = m - 2 s`` residual probes ``G``, all from :func:`scorekit.probes`
    (probe ``k`` of sample ``b`` is stream row ``b * (s + g) + k``; the first
    ``s`` form ``S``). ``Q`` = orthonormal basis of ``A S``; the estimate is
    ``tr(Q^T A Q) + mean_k (P g_k)^T A (P g_k)`` with ``P = I - Q Q^T``:
    exact when ``rank(A) <= s``.

    Returns
    -------
    TraceEstimate
        ``stderr`` is the standard error of the residual Hutchinson term
        (nan when ``g == 1``); ``num_matvecs`` counts the products made: ``m``,
        or ``m - (s - D)`` when ``s > D`` (``Q`` then has only ``D`` rows).
    """
    B, D, rest, dt, kind, seed, counter = _setup(shape, kind, seed, counter, dtype)
    m = count(num_matvecs, "num_matvecs", 3)
    batched = flag(batched, "batched")
    s, g = m // 3, m - 2 * (m // 3)
    check_layout(B, s + g, D, "num_matvecs")
    V = draw(kind, np.empty((B, s + g) + rest, dt), B, s + g, D, s + g, 0, seed, counter)
    S, G = V[:, :s].reshape(B, s, D), V[:, s:].reshape(B, g, D)
    Q = _orthonormal_rows(_rows(matvec, S, rest, batched))     # (B, s, D)
    AQ = _rows(matvec, Q, rest, batched)
    head = np.einsum("bkd,bkd->b", Q, AQ, dtype=np.float64)
    PG = np.ascontiguousarray(G - (G @ Q.transpose(0, 2, 1)) @ Q)  # (I - Q Q^T) g_k as rows
    APG = _rows(matvec, PG, rest, batched)
    moments = np.zeros((B, 3))
    t = np.empty((B, g))
    _core.trace_moments(PG, APG, None, t, moments)
    if not np.all(np.isfinite(t)) or not np.all(np.isfinite(head)):
        raise ValueError("matvec returned non-finite values")
    return TraceEstimate(head + moments[:, 1], standard_error(moments[:, 2], g),
                         np.full(B, s + Q.shape[1] + g, dtype=np.int64))


def xtrace(matvec, shape, *, num_matvecs, kind="sphere", seed, counter=0, batched=False,
           dtype=np.float64):
    """XTrace (Epperly, Tropp & Webber 2023) for each sample, with its error estimate.

    With ``s = num_matvecs // 2`` (>= 2) test vectors ``omega_i`` (probe ``i``
    of sample ``b`` is stream row ``b * s + i``) and ``Y = A Omega``, the
    ``i``-th leave-one-out estimate is

        t_i = tr(Q_i^T A Q_i) + (D - s + 1) / |r_i|^2 * r_i^T A r_i,

    ``Q_i`` an orthonormal basis of ``Y`` without column ``i`` and
    ``r_i = (I - Q_i Q_i^T) omega_i`` (the paper's improved normalisation,
    which its authors use with sphere vectors, the default here; it is applied
    for every kind, so Gaussian probes give the estimate of the sphere probes
    drawn from the same stream, up to rounding, and Rademacher vectors, of
    norm ``sqrt(D)`` too, are normalised as the paper's sphere vectors). A test
    vector in the span of the others (repeated Rademacher vectors in a small
    dimension) contributes no residual term. The error estimate is the
    paper's; on fast-decaying spectra it can understate the error (by 20-40 %
    in benchmarks/RESULTS.md).
    The estimate is the mean of the ``t_i`` and the error their standard
    deviation over ``sqrt(s)``; ``s`` may not exceed ``D``. All ``t_i`` come from one QR of ``Y`` and the
    ``s`` products ``A Q`` by rank-one downdates (``2 s`` products in all);
    samples whose ``Y`` is numerically rank-deficient are handled by explicit
    projections instead. Exact when ``rank(A) <= s - 1``.

    Returns
    -------
    TraceEstimate
        ``num_matvecs`` is ``2 s``.
    """
    B, D, rest, dt, kind, seed, counter = _setup(shape, kind, seed, counter, dtype)
    m = count(num_matvecs, "num_matvecs", 4)
    batched = flag(batched, "batched")
    s = m // 2
    if s > D:
        raise ValueError(f"num_matvecs // 2 = {s} test vectors exceed the dimension D = {D}: "
                         f"use num_matvecs <= {2 * D}")
    check_layout(B, s, D, "num_matvecs")
    Om = draw(kind, np.empty((B, s) + rest, dt), B, s, D, s, 0, seed, counter).reshape(B, s, D)
    Y = _rows(matvec, Om, rest, batched)                  # rows y_i = A omega_i
    Qc, R = np.linalg.qr(Y.astype(np.float64).transpose(0, 2, 1))  # columns: Y = Q R
    Q = np.ascontiguousarray(Qc.transpose(0, 2, 1).astype(dt))     # rows q_k
    Z = _rows(matvec, Q, rest, batched).astype(np.float64)         # rows z_k = A q_k
    Qr = Q.astype(np.float64)
    Omc = Om.astype(np.float64).transpose(0, 2, 1)                 # columns omega_i
    H = Qr @ Z.transpose(0, 2, 1)                          # H[j, k] = q_j . A q_k
    W = Qr @ Omc                                           # W[:, i] = Q^T omega_i
    T = Z @ Omc                                            # T[:, i] = (A Q)^T omega_i
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(R))):
        raise ValueError("matvec returned non-finite values")
    om2 = np.einsum("bdi,bdi->bi", Omc, Omc)
    est = np.empty((B, s))
    full = _full_rank(R, dt)
    if full.any():
        est[full] = _downdated(H[full], R[full], W[full], T[full], om2[full], D)
    if (~full).any():
        est[~full] = _projected(H[~full], R[~full], W[~full], T[~full], om2[~full], D)
    return TraceEstimate(est.mean(axis=1), est.std(axis=1, ddof=1) / np.sqrt(s),
                         np.full(B, 2 * s, dtype=np.int64))


def _leave_one_out(H, R, W, T, om2, D, trace_HP, U):
    """t_i from tr(Q_i^T A Q_i) and u_i = Q^T Q_i Q_i^T omega_i (columns of U)."""
    s = R.shape[-1]
    omega_A_omega = np.einsum("bji,bji->bi", W, R)      # omega_i^T A omega_i = w_i . R e_i
    quad = (omega_A_omega - np.einsum("bji,bji->bi", T, U) - np.einsum("bji,bji->bi", U, R)
            + np.einsum("bji,bjk,bki->bi", U, H, U))    # r_i^T A r_i, r_i = omega_i - Q u_i
    norm2 = om2 - np.einsum("bji,bji->bi", U, W)         # |r_i|^2 = |omega_i|^2 - u_i . w_i
    # omega_i inside the span of the others (e.g. repeated Rademacher vectors): no residual
    vanishing = norm2 <= 1e3 * s * np.finfo(np.float64).eps * om2
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(vanishing, 0.0, (D - s + 1) / norm2 * quad)
    return trace_HP + residual


def _downdated(H, R, W, T, om2, D):
    """Full-rank R: Q_i Q_i^T = Q (I - s_i s_i^T) Q^T, s_i the unit column i of R^-T."""
    S = np.linalg.inv(R).transpose(0, 2, 1)
    S = S / np.linalg.norm(S, axis=1, keepdims=True)
    alpha = np.einsum("bji,bji->bi", S, W)
    U = W - S * alpha[:, None, :]
    trace_HP = np.trace(H, axis1=1, axis2=2)[:, None] - np.einsum("bji,bjk,bki->bi", S, H, S)
    return _leave_one_out(H, R, W, T, om2, D, trace_HP, U)


def _projected(H, R, W, T, om2, D):
    """Rank-deficient R: Q_i = Q M_i with M_i the (s, s - 1) Q factor of R without
    column i, an orthonormal basis whose span contains that of Y without column i."""
    nb, s = R.shape[0], R.shape[-1]
    U = np.empty_like(W)
    trace_HP = np.empty((nb, s))
    for i in range(s):
        M, _ = np.linalg.qr(np.delete(R, i, axis=2))       # (nb, s, s - 1)
        P = M @ M.transpose(0, 2, 1)
        U[:, :, i] = np.einsum("bjk,bk->bj", P, W[:, :, i])
        trace_HP[:, i] = np.einsum("bjk,bkj->b", H, P)
    return _leave_one_out(H, R, W, T, om2, D, trace_HP, U)


def _full_rank(R, dtype):
    """Samples whose R is safely invertible at the precision of the products."""
    d = np.abs(np.diagonal(R, axis1=1, axis2=2))
    return d.min(axis=1) > d.max(axis=1) * R.shape[-1] * 100 * np.finfo(dtype).eps


def _orthonormal_rows(Y):
    """Rows spanning the rows of Y (B, s, D), orthonormal: Q^T of a reduced QR of Y^T."""
    q, _ = np.linalg.qr(Y.astype(np.float64).transpose(0, 2, 1))
    return np.ascontiguousarray(q.transpose(0, 2, 1).astype(Y.dtype))


def _rows(matvec, X, rest, batched):
    """A applied to the rows of X (B, m, D), returned as (B, m, D)."""
    B, m, D = X.shape
    return apply(matvec, np.ascontiguousarray(X).reshape((B, m) + rest), batched).reshape(B, m, D)
