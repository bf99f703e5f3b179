"""Pure-NumPy reference implementation of scorekit.

This module is the executable specification of the package: the
counter-based noise stream and every kernel are written here in plain,
vectorised NumPy.  The compiled kernels are tested against it.

Noise stream
------------
All randomness comes from Philox4x32-10 (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC11), keyed by a 64-bit ``seed`` and
addressed by a 64-bit ``counter`` (a stream id, e.g. the training step) and
a 64-bit block index ``j``:

* key ``= (seed mod 2**32, seed >> 32)``;
* block ``j`` is Philox4x32-10 applied to the counter words
  ``(j mod 2**32, j >> 32, counter mod 2**32, counter >> 32)``; it yields
  four 32-bit words ``w0, w1, w2, w3``.

The words of consecutive blocks form one flat word stream: word ``4*j + k``
is ``wk`` of block ``j``.  Elements of an output array are numbered in C
order, and element ``i`` of a call with ``offset=k`` is element ``k + i``
of the stream, so any slice of a large draw can be reproduced on its own.

float32 layout
    Element ``i`` uses word ``i`` (block ``i // 4``, word ``i % 4``).
    Uniform: ``u = ((w >> 9) + 0.5) * 2**-23``, exact in float32, in (0, 1).
    Normal: Box-Muller on the uniform pairs ``(u[2p], u[2p+1])``, i.e. on
    the word pairs ``(w0, w1)`` and ``(w2, w3)`` of each block::

        z[2p]     = sqrt(-2 ln u[2p]) * cos(2 pi u[2p+1])
        z[2p + 1] = sqrt(-2 ln u[2p]) * sin(2 pi u[2p+1])

float64 layout
    Element ``i`` uses the words ``(a, b) = (2i, 2i + 1)`` of the stream,
    i.e. block ``i // 2`` with ``(w0, w1)`` for even ``i`` and ``(w2, w3)``
    for odd ``i``.
    Uniform: ``u = (((a << 20) | (b >> 12)) + 0.5) * 2**-52``, exact in
    float64, in (0, 1); it carries all 32 bits of ``a`` and the top 20 bits
    of ``b``.
    Normal: the same Box-Muller pairing on the float64 uniforms, so block
    ``j`` gives elements ``2j`` (cosine) and ``2j + 1`` (sine).

Rademacher (both dtypes)
    Element ``i`` uses word ``i``: ``+1`` where its top bit is 0, else ``-1``.

Normals are evaluated in a wider type than the output: float64 for the
float32 layout and ``np.longdouble`` for the float64 layout.
``normal(..., precise=True)`` returns that wider value, which the kernel
oracles below use directly.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = [
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
    "philox4x32_10",
    "philox_blocks",
    "uniform",
    "normal",
    "rademacher",
    "perturb",
    "dsm_loss",
    "langevin_step",
]

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85

_MASK32 = 0xFFFFFFFF
_U64_MOD = 1 << 64

_TWO_PI_F64 = 2.0 * math.pi
_TWO_PI_LD = np.longdouble("6.283185307179586476925286766559005768394")

_REDUCTIONS = ("mean", "sum", "none")

_SLICE = 1 << 16


def _philox_rounds(c0, c1, c2, c3, k0, k1, rounds):
    """Run Philox4x32 rounds on uint64 arrays holding 32-bit words.

    Parameters
    ----------
    c0, c1, c2, c3 : numpy.ndarray or numpy.uint64
        Counter words, values below ``2**32``; mutually broadcastable.
    k0, k1 : numpy.ndarray or numpy.uint64
        Key words, values below ``2**32``; broadcastable with the counter.
    rounds : int
        Number of rounds.

    Returns
    -------
    tuple of numpy.ndarray
        The four output words, as uint64 values below ``2**32``.
    """
    m0 = np.uint64(PHILOX_M0)
    m1 = np.uint64(PHILOX_M1)
    w0 = np.uint64(PHILOX_W0)
    w1 = np.uint64(PHILOX_W1)
    mask = np.uint64(_MASK32)
    s32 = np.uint64(32)
    for r in range(rounds):
        if r:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = (
            (p1 >> s32) ^ c1 ^ k0,
            p1 & mask,
            (p0 >> s32) ^ c3 ^ k1,
            p0 & mask,
        )
    return c0, c1, c2, c3


def philox4x32_10(counter, key, *, rounds=10):
    """Philox4x32 block function (10 rounds by default).

    One round maps counter ``(c0, c1, c2, c3)`` and key ``(k0, k1)`` to
    ``(hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)``, where ``hi0:lo0`` is the
    64-bit product ``0xD2511F53 * c0`` and ``hi1:lo1`` is
    ``0xCD9E8D57 * c2``.  Between rounds the key is bumped,
    ``k0 += 0x9E3779B9``, ``k1 += 0xBB67AE85`` (mod ``2**32``), so the
    first round uses the key as given.

    Parameters
    ----------
    counter : array_like of uint32, shape (..., 4)
        Counter words.
    key : array_like of uint32, shape (..., 2)
        Key words; broadcast against ``counter[..., 0]``.
    rounds : int, optional
        Number of rounds, 10 for Philox4x32-10.

    Returns
    -------
    numpy.ndarray of uint32, shape (..., 4)
        The output words.
    """
    ctr = np.asarray(counter).astype(np.uint64)
    k = np.asarray(key).astype(np.uint64)
    if ctr.shape[-1:] != (4,):
        raise ValueError(f"counter must have shape (..., 4), got {ctr.shape}")
    if k.shape[-1:] != (2,):
        raise ValueError(f"key must have shape (..., 2), got {k.shape}")
    shape = np.broadcast_shapes(ctr.shape[:-1], k.shape[:-1])
    words = _philox_rounds(
        ctr[..., 0], ctr[..., 1], ctr[..., 2], ctr[..., 3], k[..., 0], k[..., 1], rounds
    )
    out = np.empty(shape + (4,), dtype=np.uint32)
    for i, w in enumerate(words):
        out[..., i] = w
    return out


def _as_u64(value, name):
    """Return ``value`` as a Python int, checking it fits in 64 unsigned bits."""
    v = operator.index(value)
    if not 0 <= v < _U64_MOD:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def philox_blocks(seed, counter, first_block, num_blocks):
    """Philox4x32-10 output words for a run of consecutive blocks.

    Block ``j`` is :func:`philox4x32_10` on the counter words
    ``(j mod 2**32, j >> 32, counter mod 2**32, counter >> 32)`` with key
    ``(seed mod 2**32, seed >> 32)``.

    Parameters
    ----------
    seed : int
        Unsigned 64-bit seed.
    counter : int
        Unsigned 64-bit stream counter.
    first_block : int
        Index of the first block, taken modulo ``2**64``.
    num_blocks : int
        Number of blocks.

    Returns
    -------
    numpy.ndarray of uint32, shape (num_blocks, 4)
        Row ``r`` holds the words of block ``first_block + r``
        (block indices wrap modulo ``2**64``).
    """
    seed = _as_u64(seed, "seed")
    counter = _as_u64(counter, "counter")
    first_block = operator.index(first_block) % _U64_MOD
    num_blocks = operator.index(num_blocks)
    if num_blocks < 0:
        raise ValueError(f"num_blocks must be non-negative, got {num_blocks}")
    j = np.arange(num_blocks, dtype=np.uint64) + np.uint64(first_block)
    mask = np.uint64(_MASK32)
    words = _philox_rounds(
        j & mask,
        j >> np.uint64(32),
        np.uint64(counter & _MASK32),
        np.uint64(counter >> 32),
        np.uint64(seed & _MASK32),
        np.uint64(seed >> 32),
        10,
    )
    out = np.empty((num_blocks, 4), dtype=np.uint32)
    for i, w in enumerate(words):
        out[:, i] = w
    return out


def _words(seed, counter, first_word, count):
    """Words ``first_word .. first_word + count - 1`` of the flat word stream."""
    first_block = first_word // 4
    end_block = -(-(first_word + count) // 4)
    blocks = philox_blocks(seed, counter, first_block, end_block - first_block)
    start = first_word - 4 * first_block
    return blocks.reshape(-1)[start : start + count]


def _unit_f32(w):
    """float32 uniform in (0, 1) from uint32 words: ``((w >> 9) + 0.5) * 2**-23``."""
    top = (w >> np.uint32(9)).astype(np.float32)
    return (top + np.float32(0.5)) * np.float32(2.0**-23)


def _unit_f64(a, b):
    """float64 uniform in (0, 1) from word pairs: ``((a << 20 | b >> 12) + 0.5) * 2**-52``."""
    v = (a.astype(np.uint64) << np.uint64(20)) | (b.astype(np.uint64) >> np.uint64(12))
    return (v.astype(np.float64) + 0.5) * 2.0**-52


def _cos_sin_turns(t, wide):
    """``cos(2 pi t)`` and ``sin(2 pi t)`` evaluated in ``wide``.

    ``t`` is split exactly into the nearest quarter turn ``q / 4`` and a
    remainder ``f`` with ``|f| <= 1/8`` (exact because ``t`` is a dyadic
    uniform), so that only ``cos`` and ``sin`` of ``phi = 2 pi f`` in
    ``[-pi/4, pi/4]`` are evaluated; the angle-sum formulas with
    ``cos(q pi / 2)`` and ``sin(q pi / 2)`` in ``{-1, 0, 1}`` then give the
    result without further rounding.

    Parameters
    ----------
    t : numpy.ndarray of float32 or float64
        Uniform values in (0, 1).
    wide : numpy.dtype
        Evaluation type, float64 or ``np.longdouble``.

    Returns
    -------
    cos, sin : numpy.ndarray of ``wide``
    """
    q = np.rint(4 * t)
    f = t - q / 4
    phi = (_TWO_PI_LD if wide == np.longdouble else _TWO_PI_F64) * f.astype(wide)
    c, s = np.cos(phi), np.sin(phi)
    k = q.astype(np.intp) % 4
    cq = np.array([1, 0, -1, 0], dtype=wide)[k]
    sq = np.array([0, 1, 0, -1], dtype=wide)[k]
    return cq * c - sq * s, sq * c + cq * s


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _shape_size(shape):
    shape = (operator.index(shape),) if np.ndim(shape) == 0 else tuple(map(operator.index, shape))
    return shape, math.prod(shape)


def _uniform_stream(seed, counter, dtype, first, count):
    """Uniform stream elements ``first .. first + count - 1`` in ``dtype``."""
    if dtype == np.float32:
        return _unit_f32(_words(seed, counter, first, count))
    w = _words(seed, counter, 2 * first, 2 * count)
    return _unit_f64(w[0::2], w[1::2])


def _assemble(segment, offset, n, dtype):
    """Concatenate ``segment(first, count)`` over stream elements ``offset .. offset + n - 1``.

    The stream is evaluated in slices of ``_SLICE`` elements, which keeps
    the working set of each vectorised pass small; the result does not
    depend on the slicing.
    """
    offset = operator.index(offset)
    if offset < 0:
        raise ValueError(f"offset must be non-negative, got {offset}")
    out = np.empty(n, dtype=dtype)
    for start in range(0, n, _SLICE):
        stop = min(n, start + _SLICE)
        out[start:stop] = segment(offset + start, stop - start)
    return out


def uniform(shape, *, seed, counter=0, dtype=np.float32, offset=0):
    """Uniform variates in the open interval (0, 1).

    Parameters
    ----------
    shape : int or tuple of int
        Output shape.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Output dtype; selects the layout (see the module docstring).
    offset : int, optional
        Stream index of the first element (C order), so that
        ``uniform(s, offset=k).ravel()`` equals
        ``uniform(n, offset=0)[k:k + prod(s)]`` for any large enough ``n``.

    Returns
    -------
    numpy.ndarray
        Bit-exact uniform values of the given dtype.
    """
    dt = _check_dtype(dtype)
    shape, n = _shape_size(shape)

    def segment(first, count):
        return _uniform_stream(seed, counter, dt, first, count)

    return _assemble(segment, offset, n, dt).reshape(shape)


def normal(shape, *, seed, counter=0, dtype=np.float32, offset=0, precise=False):
    """Standard normal variates by the Box-Muller transform.

    Element pair ``(2p, 2p + 1)`` of the stream is
    ``sqrt(-2 ln u[2p]) * (cos(2 pi u[2p+1]), sin(2 pi u[2p+1]))`` on the
    uniform stream ``u`` of the same dtype (see the module docstring).  The
    transform is evaluated in float64 for the float32 layout and in
    ``np.longdouble`` for the float64 layout.

    Parameters
    ----------
    shape : int or tuple of int
        Output shape.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Layout and output dtype.
    offset : int, optional
        Stream index of the first element; may be odd, in which case the
        first element is the sine half of its Box-Muller pair.
    precise : bool, optional
        If true, return the values in the evaluation type (float64 for the
        float32 layout, ``np.longdouble`` for the float64 layout) instead
        of rounding them to ``dtype``.

    Returns
    -------
    numpy.ndarray
        Normal variates of dtype ``dtype``, or of the evaluation type when
        ``precise`` is true.
    """
    dt = _check_dtype(dtype)
    shape, n = _shape_size(shape)
    wide = np.dtype(np.float64 if dt == np.float32 else np.longdouble)

    def segment(first, count):
        first_pair = first // 2
        npairs = -(-(first + count) // 2) - first_pair
        u = _uniform_stream(seed, counter, dt, 2 * first_pair, 2 * npairs)
        radius = np.sqrt(-2 * np.log(u[0::2].astype(wide)))
        cos, sin = _cos_sin_turns(u[1::2], wide)
        z = np.empty(2 * npairs, dtype=wide)
        z[0::2] = radius * cos
        z[1::2] = radius * sin
        start = first - 2 * first_pair
        return z[start : start + count]

    z = _assemble(segment, offset, n, wide).reshape(shape)
    return z if precise else z.astype(dt)


def rademacher(shape, *, seed, counter=0, dtype=np.float32, offset=0):
    """Rademacher variates: ``+1`` where the word's top bit is 0, else ``-1``.

    Element ``i`` uses word ``i`` of the stream (block ``i // 4``, word
    ``i % 4``) for both dtypes.

    Parameters
    ----------
    shape : int or tuple of int
        Output shape.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Output dtype.
    offset : int, optional
        Stream index of the first element.

    Returns
    -------
    numpy.ndarray
        Values ``+1`` and ``-1`` of the given dtype.
    """
    dt = _check_dtype(dtype)
    shape, n = _shape_size(shape)

    def segment(first, count):
        w = _words(seed, counter, first, count)
        return np.where(w >> np.uint32(31), dt.type(-1), dt.type(1))

    return _assemble(segment, offset, n, dt).reshape(shape)


def _compute_dtype(z):
    """Wider of float64 and the dtype of the normals ``z``."""
    return np.result_type(z.dtype, np.float64)


def _per_sample(value, ndim, ct):
    """Cast a scalar or length-B array to ``ct``, shaped to broadcast over (B, ...)."""
    v = np.asarray(value, dtype=ct)
    if v.ndim == 0:
        return v
    if v.ndim != 1:
        raise ValueError(f"per-sample parameters must be scalars or 1-D, got shape {v.shape}")
    return v.reshape(v.shape + (1,) * (ndim - 1))


def perturb(x, sigma, *, seed, counter=0, scale=None):
    """Forward noising ``scale * x + sigma * z``.

    Parameters
    ----------
    x : numpy.ndarray, shape (B, ...)
        Clean samples, float32 or float64; the dtype selects the noise
        layout.
    sigma : float or array_like, shape (B,)
        Noise level, scalar or per sample.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    scale : float or array_like, shape (B,), optional
        Signal scale, scalar or per sample; 1 when omitted.

    Returns
    -------
    numpy.ndarray of float64, shape (B, ...)
        The noised samples, with ``z = normal(x.shape, seed=seed,
        counter=counter, dtype=x.dtype, precise=True)``.  The arithmetic is
        done in float64 (``np.longdouble`` for float64 ``x``) and rounded
        once to float64.
    """
    x = np.asarray(x)
    z = normal(x.shape, seed=seed, counter=counter, dtype=x.dtype, precise=True)
    ct = _compute_dtype(z)
    s = _per_sample(sigma, x.ndim, ct)
    a = _per_sample(1 if scale is None else scale, x.ndim, ct)
    return (a * x.astype(ct) + s * z).astype(np.float64)


def dsm_loss(
    score,
    sigma,
    *,
    seed=None,
    counter=0,
    noise=None,
    weight="sigma2",
    reduction="mean",
    return_grad=True,
):
    """Denoising score-matching loss and its gradient with respect to the score.

    For the noised sample ``x_b + sigma_b * z_b`` the target score is
    ``-z_b / sigma_b``; the per-sample loss is::

        L_b = 0.5 * w_b * sum_j (score[b, j] + z[b, j] / sigma_b) ** 2

    with ``j`` running over all non-batch elements.

    Parameters
    ----------
    score : numpy.ndarray, shape (B, ...)
        Predicted scores, float32 or float64; the dtype selects the noise
        layout.
    sigma : float or array_like, shape (B,)
        Noise level, scalar or per sample.
    seed : int, optional
        Unsigned 64-bit seed; required unless ``noise`` is given.
    counter : int, optional
        Unsigned 64-bit stream counter.
    noise : array_like, shape (B, ...), optional
        Explicit ``z``; when given, ``seed`` and ``counter`` are unused.
        Otherwise ``z = normal(score.shape, seed=seed, counter=counter,
        dtype=score.dtype, precise=True)``.
    weight : {"sigma2", "none"} or float or array_like, shape (B,), optional
        ``w_b``: ``sigma_b ** 2`` for ``"sigma2"``, 1 for ``"none"``, or the
        given scalar or per-sample values.
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"`` averages ``L_b`` over the batch (NaN for an empty batch),
        ``"sum"`` adds them (0 for an empty batch), ``"none"`` returns them.
    return_grad : bool, optional
        Also return the gradient.

    Returns
    -------
    loss : float or numpy.ndarray of float64, shape (B,)
        The reduced loss; an array for ``reduction="none"``.
    grad : numpy.ndarray of float64, shape (B, ...)
        Gradient of the reduced loss with respect to ``score``, i.e.
        ``w_b * (score + z / sigma_b)``, divided by ``B`` for ``"mean"``.
        For ``"none"`` it is the gradient of each ``L_b`` with respect to
        its own sample.  Only returned when ``return_grad`` is true.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    score = np.asarray(score)
    if score.ndim < 1:
        raise ValueError("score must have a batch axis")
    if noise is None:
        if seed is None:
            raise ValueError("either seed or noise must be given")
        z = normal(score.shape, seed=seed, counter=counter, dtype=score.dtype, precise=True)
    else:
        z = np.asarray(noise)
        if z.shape != score.shape:
            raise ValueError(f"noise shape {z.shape} does not match score shape {score.shape}")
        z = z.astype(np.result_type(z.dtype, np.float64))
    ct = _compute_dtype(z)
    batch = score.shape[0]
    s = _per_sample(sigma, score.ndim, ct)
    if isinstance(weight, str):
        if weight == "sigma2":
            w = s * s
        elif weight == "none":
            w = np.asarray(1, dtype=ct)
        else:
            raise ValueError(f"weight must be 'sigma2', 'none' or numeric, got {weight!r}")
    else:
        w = _per_sample(weight, score.ndim, ct)
    resid = score.astype(ct) + z / s
    grad = w * resid
    axes = tuple(range(1, score.ndim))
    per_sample = np.broadcast_to(0.5 * (grad * resid).sum(axis=axes), (batch,))
    grad = np.broadcast_to(grad, score.shape)
    if reduction == "none":
        loss = per_sample.astype(np.float64)
    elif reduction == "sum":
        loss = float(per_sample.sum())
    elif batch:
        loss = float(per_sample.sum() / ct.type(batch))
        grad = grad / ct.type(batch)
    else:
        loss = math.nan
    if not return_grad:
        return loss
    return loss, grad.astype(np.float64)


def langevin_step(x, score, step_size, *, seed, counter=0):
    """One unadjusted Langevin step ``x + eps * score + sqrt(2 * eps) * z``.

    Parameters
    ----------
    x : numpy.ndarray, shape (B, ...)
        Current samples, float32 or float64; the dtype selects the noise
        layout.
    score : array_like, shape (B, ...)
        Score evaluated at ``x``.
    step_size : float or array_like, shape (B,)
        Step size ``eps``, scalar or per sample.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.

    Returns
    -------
    numpy.ndarray of float64, shape (B, ...)
        The updated samples, with ``z = normal(x.shape, seed=seed,
        counter=counter, dtype=x.dtype, precise=True)``, computed in
        float64 (``np.longdouble`` for float64 ``x``) and rounded once to
        float64.
    """
    x = np.asarray(x)
    z = normal(x.shape, seed=seed, counter=counter, dtype=x.dtype, precise=True)
    ct = _compute_dtype(z)
    eps = _per_sample(step_size, x.ndim, ct)
    out = x.astype(ct) + eps * np.asarray(score).astype(ct) + np.sqrt(2 * eps) * z
    return out.astype(np.float64)
