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


# ---------------------------------------------------------------------------
# Trace estimation and sliced / implicit score matching
# ---------------------------------------------------------------------------
#
# Probe vectors come from the same counter-based stream as the rest of the
# module.  A request for ``K`` probes of ``B`` samples with ``D`` elements
# each is viewed as ``R = B * K`` rows of ``D`` stream elements; row
# ``r = b * K + k`` (probe ``k`` of sample ``b``) holds stream elements
# ``[r * D, (r + 1) * D)``.  Every probe kind satisfies ``E[v v^T] = I``.

__all__ += [
    "probes",
    "hutchinson",
    "diagonal",
    "hutchpp",
    "xtrace",
    "divergence",
    "ssm_loss",
    "ism_loss",
]

_PROBE_KINDS = ("rademacher", "gaussian", "sphere")


def _check_kind(kind):
    """Return ``kind`` if it names a probe distribution, else raise ValueError."""
    if not isinstance(kind, str) or kind not in _PROBE_KINDS:
        raise ValueError(f"kind must be one of {_PROBE_KINDS}, got {kind!r}")
    return kind


def _check_count(value, name, minimum):
    """Return ``value`` as a Python int, checking it is an integer ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v}")
    return v


def _check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _batch_shape(shape):
    """Validate a ``(B, ...)`` shape and return it as a tuple of ints."""
    try:
        shape, _ = _shape_size(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of integers, got {shape!r}") from None
    if len(shape) < 1:
        raise ValueError("shape must have at least one (batch) axis")
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    return shape


def _real_array(value, name):
    """``value`` as a float64 array; TypeError unless it holds real numbers."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def _layout_array(value, name):
    """Check that ``value`` is a float32/float64 array with a batch axis.

    Returns the array and its canonical dtype, which selects the noise
    layout of the probes drawn for it.
    """
    a = np.asarray(value)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{name} must be a float32 or float64 array (its dtype selects the noise "
            f"layout), got dtype {a.dtype}"
        )
    if a.ndim < 1:
        raise ValueError(f"{name} must have a batch axis")
    return a, np.dtype(np.float32 if a.dtype.itemsize == 4 else np.float64)


def _square_batch(A):
    """``A`` as a float64 array of shape (B, D, D)."""
    a = _real_array(A, "A")
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"A must have shape (B, D, D), got {a.shape}")
    return a


def _mean_stderr(t):
    """Mean over axis 1 and its standard error ``std(ddof=1) / sqrt(K)``.

    The standard error is NaN when axis 1 has a single entry.
    """
    k = t.shape[1]
    mean = t.mean(axis=1)
    if k == 1:
        return mean, np.full(mean.shape, np.nan)
    return mean, t.std(axis=1, ddof=1) / np.sqrt(k)


def _reduce(per_sample, reduction):
    """Reduced loss and the divisor applied to the per-sample gradients."""
    batch = per_sample.shape[0]
    if reduction == "none":
        return per_sample, 1
    if reduction == "sum":
        return float(per_sample.sum()), 1
    if batch:
        return float(per_sample.sum() / batch), batch
    return math.nan, 1


def probes(shape, *, kind, seed, counter=0, dtype=np.float32, num_probes=None):
    """Probe vectors with identity second moment, ``E[v v^T] = I``.

    Parameters
    ----------
    shape : tuple of int
        ``(B, ...)``: the batch size followed by the shape of one sample,
        which has ``D = prod(shape[1:])`` elements.
    kind : {"rademacher", "gaussian", "sphere"}
        ``"rademacher"``: the :func:`rademacher` stream (entries ``+-1``).
        ``"gaussian"``: the :func:`normal` stream, taken with
        ``precise=True`` and rounded to float64.
        ``"sphere"``: each Gaussian row ``g`` scaled to Euclidean norm
        ``sqrt(D)``, ``v = g * sqrt(D / sum(g ** 2))``, in float64.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Stream layout the probes are drawn from.
    num_probes : int, optional
        Number ``K >= 1`` of probes per sample.  When omitted, one probe per
        sample is drawn and the output has shape ``shape``.

    Returns
    -------
    numpy.ndarray of float64
        Shape ``shape`` when ``num_probes`` is None, else
        ``(B, K, *shape[1:])``.  Viewed as ``B * K`` rows of ``D`` elements,
        row ``r = b * K + k`` (probe ``k`` of sample ``b``) is built from
        stream elements ``[r * D, (r + 1) * D)`` of ``(seed, counter)``.
    """
    shape = _batch_shape(shape)
    kind = _check_kind(kind)
    seed = _as_u64(seed, "seed")
    counter = _as_u64(counter, "counter")
    dt = _check_dtype(dtype)
    k = 1 if num_probes is None else _check_count(num_probes, "num_probes", 1)
    batch, dim = shape[0], math.prod(shape[1:])
    n = batch * k * dim
    if kind == "rademacher":
        flat = rademacher(n, seed=seed, counter=counter, dtype=dt)
    else:
        flat = normal(n, seed=seed, counter=counter, dtype=dt, precise=True)
    rows = flat.astype(np.float64).reshape(batch * k, dim)
    if kind == "sphere" and dim:
        rows = rows * np.sqrt(dim / np.sum(rows**2, axis=1, keepdims=True))
    out_shape = shape if num_probes is None else (batch, k) + shape[1:]
    return rows.reshape(out_shape)


def hutchinson(A, *, num_probes, kind, seed, counter=0, dtype=np.float32):
    """Girard-Hutchinson trace estimates of a batch of square matrices.

    For each sample ``b`` the ``K`` probes ``v_k`` (see :func:`probes`)
    give the terms ``t_k = v_k^T A_b v_k``, whose mean is an unbiased
    estimate of ``trace(A_b)``.

    Parameters
    ----------
    A : array_like, shape (B, D, D)
        Matrices, not necessarily symmetric.
    num_probes : int
        Number ``K >= 1`` of probes per sample.
    kind : {"rademacher", "gaussian", "sphere"}
        Probe distribution.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Stream layout of the probes, which are
        ``probes((B, D), kind=kind, seed=seed, counter=counter, dtype=dtype,
        num_probes=K)``.

    Returns
    -------
    estimate : numpy.ndarray of float64, shape (B,)
        ``mean_k t_k``.
    stderr : numpy.ndarray of float64, shape (B,)
        ``std(t, ddof=1) / sqrt(K)``; NaN when ``K == 1``.
    """
    a = _square_batch(A)
    k = _check_count(num_probes, "num_probes", 1)
    batch, dim, _ = a.shape
    v = probes((batch, dim), kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=k)
    av = np.einsum("bij,bkj->bki", a, v)
    t = np.sum(v * av, axis=2)
    return _mean_stderr(t)


def diagonal(A, *, num_probes, kind, seed, counter=0, dtype=np.float32):
    """Stochastic estimates of the diagonals of a batch of square matrices.

    With the probes of :func:`hutchinson`, the terms are the elementwise
    products ``v_k * (A_b v_k)``, whose mean is an unbiased estimate of
    ``diag(A_b)``.

    Parameters
    ----------
    A : array_like, shape (B, D, D)
        Matrices, not necessarily symmetric.
    num_probes : int
        Number ``K >= 1`` of probes per sample.
    kind : {"rademacher", "gaussian", "sphere"}
        Probe distribution.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Stream layout of the probes.

    Returns
    -------
    estimate : numpy.ndarray of float64, shape (B, D)
        ``mean_k v_k * (A_b v_k)``.
    stderr : numpy.ndarray of float64, shape (B, D)
        Elementwise ``std(ddof=1) / sqrt(K)`` over the probes; NaN when
        ``K == 1``.
    """
    a = _square_batch(A)
    k = _check_count(num_probes, "num_probes", 1)
    batch, dim, _ = a.shape
    v = probes((batch, dim), kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=k)
    av = np.einsum("bij,bkj->bki", a, v)
    return _mean_stderr(v * av)


def hutchpp(A, *, num_matvecs, kind, seed, counter=0, dtype=np.float32):
    """Hutch++ trace estimates (Meyer, Musco, Musco and Woodruff, 2021).

    With a budget of ``m`` matrix-vector products per sample, ``s = m // 3``
    sketch vectors and ``g = m - 2 * s`` residual probes are drawn as
    ``probes((B, D), ..., num_probes=s + g)``: probes ``k < s`` are the
    columns of the sketch ``S`` (D x s), the others those of ``G`` (D x g).
    For each sample, with ``Q`` the orthonormal factor of the reduced QR
    decomposition of ``A S`` and ``P = I - Q Q^T``::

        estimate = trace(Q^T A Q) + (1 / g) * sum_k (P g_k)^T A (P g_k)

    Parameters
    ----------
    A : array_like, shape (B, D, D)
        Matrices, not necessarily symmetric.
    num_matvecs : int
        Budget ``m >= 3`` of matrix-vector products per sample.
    kind : {"rademacher", "gaussian", "sphere"}
        Probe distribution.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Stream layout of the probes.

    Returns
    -------
    estimate : numpy.ndarray of float64, shape (B,)
        The Hutch++ estimates.
    stderr : numpy.ndarray of float64, shape (B,)
        ``std(ddof=1) / sqrt(g)`` of the ``g`` residual terms
        ``(P g_k)^T A (P g_k)``; NaN when ``g == 1``.
    """
    a = _square_batch(A)
    m = _check_count(num_matvecs, "num_matvecs", 3)
    s = m // 3
    g = m - 2 * s
    batch, dim, _ = a.shape
    v = probes((batch, dim), kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=s + g)
    estimate = np.empty(batch)
    terms = np.empty((batch, g))
    for b in range(batch):
        ab = a[b]
        sketch = v[b, :s].T
        resid = v[b, s:].T
        q, _ = np.linalg.qr(ab @ sketch, mode="reduced")
        z = resid - q @ (q.T @ resid)
        terms[b] = np.sum(z * (ab @ z), axis=0)
        estimate[b] = np.trace(q.T @ ab @ q) + terms[b].mean()
    return estimate, _mean_stderr(terms)[1]


def xtrace(A, *, num_matvecs, kind="sphere", seed, counter=0, dtype=np.float32):
    """XTrace trace estimates with the improved normalisation.

    XTrace is the exchangeable trace estimator of Epperly, Tropp and
    Webber ("XTrace: making the most of every sample in stochastic trace
    estimation", SIAM J. Matrix Anal. Appl., 2024), here with the
    normalisation of their section 2.3.  With a budget of ``m``
    matrix-vector products, ``s = m // 2`` test vectors
    ``Omega = [omega_1, ..., omega_s]`` are drawn per sample as
    ``probes((B, D), ..., num_probes=s)``.  For each ``i``, ``Q_i`` is the
    orthonormal factor (D x (s - 1)) of the reduced QR decomposition of
    ``A Omega`` without column ``i``, ``P_i = I - Q_i Q_i^T`` and
    ``r_i = P_i omega_i``; the ``i``-th estimate is::

        t_i = trace(Q_i^T A Q_i) + (D - s + 1) / ||r_i||^2 * r_i^T A r_i

    Each ``t_i`` is evaluated directly from this definition.  For sphere
    and Gaussian test vectors the direction ``r_i / ||r_i||`` is uniform on
    the unit sphere of ``range(P_i)``, of dimension ``D - s + 1``, so every
    ``t_i`` is unbiased, and Gaussian and sphere test vectors from the same
    stream give the same estimates.  ``t_i`` is undefined when ``omega_i``
    lies in ``range(Q_i)``, which has positive probability only for
    Rademacher test vectors (e.g. ``omega_i = +-omega_j``); the computed
    ``r_i`` is then rounding noise, and the second term is taken as 0 only
    when ``r_i`` is exactly zero.

    Parameters
    ----------
    A : array_like, shape (B, D, D)
        Matrices, not necessarily symmetric.
    num_matvecs : int
        Budget ``m >= 4`` of matrix-vector products per sample; the number
        of test vectors ``m // 2`` must not exceed ``D``.
    kind : {"sphere", "gaussian", "rademacher"}, optional
        Test vector distribution.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    dtype : {numpy.float32, numpy.float64}, optional
        Stream layout of the test vectors.

    Returns
    -------
    estimate : numpy.ndarray of float64, shape (B,)
        ``mean_i t_i``.
    error : numpy.ndarray of float64, shape (B,)
        The error estimate ``std(t, ddof=1) / sqrt(s)``.
    """
    a = _square_batch(A)
    m = _check_count(num_matvecs, "num_matvecs", 4)
    s = m // 2
    batch, dim, _ = a.shape
    if s > dim:
        raise ValueError(
            f"num_matvecs // 2 = {s} test vectors exceed the matrix dimension D = {dim}"
        )
    omega = probes((batch, dim), kind=kind, seed=seed, counter=counter, dtype=dtype, num_probes=s)
    t = np.empty((batch, s))
    for b in range(batch):
        ab = a[b]
        om = omega[b].T
        y = ab @ om
        for i in range(s):
            q, _ = np.linalg.qr(np.delete(y, i, axis=1), mode="reduced")
            r = om[:, i] - q @ (q.T @ om[:, i])
            rr = r @ r
            resid = (dim - s + 1) * (r @ ab @ r) / rr if rr > 0 else 0.0
            t[b, i] = np.trace(q.T @ ab @ q) + resid
    return _mean_stderr(t)


def _call_rows(fn, arg):
    """``fn(arg)`` as a float64 array, checking it keeps the input shape."""
    out = np.asarray(fn(arg))
    if out.shape != arg.shape:
        raise ValueError(f"fn must return an array of the input shape {arg.shape}, got {out.shape}")
    return _real_array(out, "fn(x)")


def divergence(
    fn, x, *, num_probes=1, kind="gaussian", seed, counter=0, method="central", step=None
):
    """Divergence ``sum_j d fn(x)_j / d x_j`` by central finite differences.

    Parameters
    ----------
    fn : callable
        Maps a float64 array of shape ``x.shape`` to an array of the same
        shape; output row ``b`` depends only on input row ``b``.
    x : numpy.ndarray, shape (B, ...)
        Points, float32 or float64; the dtype selects the probe layout and
        the default step.  ``D = prod(x.shape[1:])``.
    num_probes : int, optional
        Number ``K >= 1`` of probes per sample (``method="central"``).
    kind : {"gaussian", "rademacher", "sphere"}, optional
        Probe distribution (``method="central"``).
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    method : {"central", "exact"}, optional
        ``"central"``: a Hutchinson estimate over the probes
        ``v_k = probes(x.shape, kind=kind, seed=seed, counter=counter,
        dtype=x.dtype, num_probes=K)[:, k]``, each term being
        ``sum(v_k * (fn(x + h v_k) - fn(x - h v_k)) / (2 h))`` (``2 K``
        calls of ``fn``).
        ``"exact"``: ``sum_j (fn(x + h e_j)_j - fn(x - h e_j)_j) / (2 h)``
        over the basis vectors ``e_j`` of the flattened sample (``2 D``
        calls of ``fn``).
    step : float or array_like, shape (B,), optional
        Positive finite step ``h_b``, scalar or per sample.  Defaults to
        ``h_b = eps ** (1 / 3) * max(1, rms(x_b))``, with ``eps`` the
        machine epsilon of ``x.dtype`` and ``rms`` the root mean square of
        sample ``b``.

    Returns
    -------
    numpy.ndarray of float64, shape (B,)
        The divergence estimates (0 when ``D == 0``).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    x, layout = _layout_array(x, "x")
    if not isinstance(method, str) or method not in ("central", "exact"):
        raise ValueError(f"method must be 'central' or 'exact', got {method!r}")
    k = _check_count(num_probes, "num_probes", 1)
    kind = _check_kind(kind)
    seed = _as_u64(seed, "seed")
    counter = _as_u64(counter, "counter")
    batch = x.shape[0]
    dim = math.prod(x.shape[1:])
    x64 = x.astype(np.float64)
    if step is not None:
        h = _real_array(step, "step")
        if h.ndim == 0:
            h = np.full(batch, h)
        elif h.shape != (batch,):
            raise ValueError(f"step must be a scalar or have shape ({batch},), got {h.shape}")
        if not np.all(np.isfinite(h) & (h > 0)):
            raise ValueError("step must be positive and finite")
    if batch == 0 or dim == 0:
        return np.zeros(batch)
    if step is None:
        rms = np.sqrt(np.mean(x64.reshape(batch, dim) ** 2, axis=1))
        h = np.finfo(layout).eps ** (1 / 3) * np.maximum(1.0, rms)

    if method == "exact":
        flat = x64.reshape(batch, dim)
        total = np.zeros(batch)
        for j in range(dim):
            e = np.zeros(dim)
            e[j] = 1.0
            shift = h[:, None] * e
            plus = _call_rows(fn, (flat + shift).reshape(x.shape)).reshape(batch, dim)
            minus = _call_rows(fn, (flat - shift).reshape(x.shape)).reshape(batch, dim)
            total += (plus[:, j] - minus[:, j]) / (2 * h)
        return total

    v = probes(x.shape, kind=kind, seed=seed, counter=counter, dtype=layout, num_probes=k)
    hb = h.reshape((batch,) + (1,) * (x.ndim - 1))
    t = np.empty((batch, k))
    for i in range(k):
        vk = v[:, i]
        jvp = (_call_rows(fn, x64 + hb * vk) - _call_rows(fn, x64 - hb * vk)) / (2 * hb)
        t[:, i] = (vk * jvp).reshape(batch, dim).sum(axis=1)
    return t.mean(axis=1)


def ssm_loss(
    score,
    jvp,
    *,
    seed,
    counter=0,
    kind="gaussian",
    variance_reduction=True,
    reduction="mean",
    return_grad=True,
):
    """Sliced score-matching loss and its gradients.

    For sample ``b`` and probe ``k``, with ``a = v^T jvp_k`` (``jvp_k``
    being the Jacobian-vector product of the score model along ``v``) and
    ``c = v^T score_b``::

        SSM:     L_bk = a + 0.5 * c ** 2
        SSM-VR:  L_bk = a + 0.5 * ||score_b|| ** 2

    and ``L_b = mean_k L_bk``.

    Parameters
    ----------
    score : numpy.ndarray, shape (B, ...)
        Predicted scores, float32 or float64; the dtype selects the probe
        layout.  ``D = prod(score.shape[1:])``.
    jvp : array_like, shape (B, ...) or (B, K, ...)
        Jacobian-vector products along the probes: shape ``score.shape``
        for one probe per sample (``K = 1``), or ``(B, K, *score.shape[1:])``
        for ``K`` probes.  The probes are ``probes(score.shape, kind=kind,
        seed=seed, counter=counter, dtype=score.dtype, num_probes=K)``.
    seed : int
        Unsigned 64-bit seed.
    counter : int, optional
        Unsigned 64-bit stream counter.
    kind : {"gaussian", "rademacher", "sphere"}, optional
        Probe distribution.
    variance_reduction : bool, optional
        Use SSM-VR (the exact expectation of ``0.5 * c ** 2`` over the probe)
        instead of SSM.
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"`` averages ``L_b`` over the batch (NaN for an empty batch),
        ``"sum"`` adds them, ``"none"`` returns them.
    return_grad : bool, optional
        Also return the gradients.

    Returns
    -------
    loss : float or numpy.ndarray of float64, shape (B,)
        The reduced loss; an array for ``reduction="none"``.
    grad_score : numpy.ndarray of float64, shape (B, ...)
        Gradient with respect to ``score``: ``(1 / K) sum_k c_k v_k`` for
        SSM, ``score_b`` for SSM-VR; divided by ``B`` for ``"mean"``.
    grad_jvp : numpy.ndarray of float64, shape of ``jvp``
        Gradient with respect to ``jvp``: ``v_{b,k} / K``, divided by ``B``
        for ``"mean"``.
        For ``"none"`` both gradients are those of each ``L_b`` with respect
        to its own sample.  Only returned when ``return_grad`` is true.
    """
    _check_reduction(reduction)
    score, layout = _layout_array(score, "score")
    j = _real_array(jvp, "jvp")
    batch, tail = score.shape[0], score.shape[1:]
    dim = math.prod(tail)
    if j.shape == score.shape:
        k = 1
    elif j.ndim == score.ndim + 1 and j.shape[0] == batch and j.shape[2:] == tail and j.shape[1]:
        k = j.shape[1]
    else:
        raise ValueError(
            f"jvp must have shape {score.shape} or (B, K, ...) = ({batch}, K, "
            f"{', '.join(map(str, tail))}) with K >= 1, got {j.shape}"
        )
    v = probes(score.shape, kind=kind, seed=seed, counter=counter, dtype=layout, num_probes=k)
    v = v.reshape(batch, k, dim)
    s = score.astype(np.float64).reshape(batch, 1, dim)
    a = np.sum(v * j.reshape(batch, k, dim), axis=2)
    c = np.sum(v * s, axis=2)
    if variance_reduction:
        per_probe = a + 0.5 * np.sum(s * s, axis=2)
        grad_score = s[:, 0]
    else:
        per_probe = a + 0.5 * c**2
        grad_score = np.mean(c[:, :, None] * v, axis=1)
    loss, divisor = _reduce(per_probe.mean(axis=1), reduction)
    if not return_grad:
        return loss
    grad_score = (grad_score / divisor).reshape(score.shape)
    grad_jvp = (v / k / divisor).reshape(j.shape)
    return loss, grad_score, grad_jvp


def ism_loss(score, jac_trace, *, reduction="mean", return_grad=True):
    """Implicit (Hyvarinen) score-matching loss and its gradients.

    The per-sample loss is ``L_b = 0.5 * ||score_b|| ** 2 + jac_trace_b``,
    with ``jac_trace_b`` the trace of the Jacobian of the score model at
    sample ``b`` (e.g. from :func:`divergence`).

    Parameters
    ----------
    score : array_like, shape (B, ...)
        Predicted scores.
    jac_trace : array_like, shape (B,)
        Jacobian traces.
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"`` averages ``L_b`` over the batch (NaN for an empty batch),
        ``"sum"`` adds them, ``"none"`` returns them.
    return_grad : bool, optional
        Also return the gradients.

    Returns
    -------
    loss : float or numpy.ndarray of float64, shape (B,)
        The reduced loss; an array for ``reduction="none"``.
    grad_score : numpy.ndarray of float64, shape (B, ...)
        ``score``, divided by ``B`` for ``"mean"``.
    grad_jac_trace : numpy.ndarray of float64, shape (B,)
        Ones, divided by ``B`` for ``"mean"``.
        For ``"none"`` both gradients are those of each ``L_b`` with respect
        to its own sample.  Only returned when ``return_grad`` is true.
    """
    _check_reduction(reduction)
    s = _real_array(score, "score")
    if s.ndim < 1:
        raise ValueError("score must have a batch axis")
    tr = _real_array(jac_trace, "jac_trace")
    batch = s.shape[0]
    if tr.shape != (batch,):
        raise ValueError(f"jac_trace must have shape ({batch},), got {tr.shape}")
    dim = math.prod(s.shape[1:])
    loss, divisor = _reduce(0.5 * np.sum(s.reshape(batch, dim) ** 2, axis=1) + tr, reduction)
    if not return_grad:
        return loss
    return loss, s / divisor, np.ones(batch) / divisor


# ---------------------------------------------------------------------------
# Gaussian mixtures
# ---------------------------------------------------------------------------

__all__ += ["gmm_log_prob", "gmm_score", "gmm_score_divergence"]


def _gmm_terms(means, stds, weights, x, sigma):
    """Per-component log terms, variances and differences, all (B, K, D) or (B, K)."""
    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    var = np.broadcast_to(np.asarray(stds, dtype=np.float64).reshape(
        (K, 1) if np.ndim(stds) == 1 else np.shape(stds)) ** 2, (K, D))
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    x = np.asarray(x, dtype=np.float64)
    s2 = np.asarray(sigma, dtype=np.float64).reshape(-1, 1, 1) ** 2
    v = var[None] + s2                                   # (B, K, D)
    d = x[:, None, :] - means[None]                      # (B, K, D)
    logits = np.log(w)[None] - 0.5 * np.sum(d * d / v + np.log(2 * np.pi * v), axis=2)
    top = logits.max(axis=1, keepdims=True)
    log_p = top[:, 0] + np.log(np.sum(np.exp(logits - top), axis=1))
    resp = np.exp(logits - log_p[:, None])               # (B, K)
    return log_p, resp, d, v


def gmm_log_prob(means, stds, weights, x, sigma=0.0):
    """``log sum_k w_k N(x; mu_k, diag(std_k**2 + sigma**2))`` for each row of x.

    ``stds`` is a scalar, a (K,) array (isotropic) or a (K, D) array
    (diagonal); ``weights`` are normalised; ``sigma`` is a scalar or (B,).
    Written directly over a (B, K, D) array.
    """
    return _gmm_terms(means, stds, weights, x, sigma)[0]


def gmm_score(means, stds, weights, x, sigma=0.0):
    """``grad_x log p``: ``sum_k r_k * -(x - mu_k) / v_k`` with responsibilities r_k."""
    _, resp, d, v = _gmm_terms(means, stds, weights, x, sigma)
    return np.sum(resp[:, :, None] * (-d / v), axis=1)


def gmm_score_divergence(means, stds, weights, x, sigma=0.0):
    """Trace of the score's Jacobian, formed explicitly as a (B, D, D) matrix.

    ``J = sum_k r_k ((g_k - s)(g_k - s)^T - diag(1 / v_k))`` with ``g_k`` the
    component scores and ``s`` the mixture score (the covariance form of
    ``sum_k r_k (g_k g_k^T - diag(1 / v_k)) - s s^T``).
    """
    _, resp, d, v = _gmm_terms(means, stds, weights, x, sigma)
    g = -d / v
    s = np.sum(resp[:, :, None] * g, axis=1)
    e = g - s[:, None, :]
    jac = (np.einsum("bk,bki,bkj->bij", resp, e, e)
           - np.einsum("bk,bki->bi", resp, 1 / v)[:, :, None] * np.eye(g.shape[2]))
    return np.trace(jac, axis1=1, axis2=2)


# ---------------------------------------------------------------------------
# Sampler steps
# ---------------------------------------------------------------------------

__all__ += ["affine_step", "langevin_corrector", "mala_accept"]


def _row_noise(shape, seed, counter, offset, dtype):
    """Normals of samples offset .. offset + B: stream elements from offset * D on."""
    D = math.prod(shape[1:])
    return normal(shape, seed=seed, counter=counter, dtype=dtype, offset=offset * D,
                  precise=True)


def affine_step(x, score, a, c, g, *, seed, counter=0, offset=0):
    """``(x_next, x_mean)`` with ``x_mean = a x + c score`` and ``x_next = x_mean + g z``.

    ``a``, ``c``, ``g`` are scalars or (B,) arrays; ``z`` holds the normals of
    stream rows ``offset + b``. float64 results.
    """
    x = np.asarray(x)
    z = _row_noise(x.shape, seed, counter, offset, x.dtype)
    cols = (slice(None),) + (None,) * (x.ndim - 1)
    a, c, g = (np.asarray(v, dtype=np.float64) for v in (a, c, g))
    a, c, g = (v[cols] if v.ndim else v for v in (a, c, g))
    mean = a * x.astype(np.float64) + c * np.asarray(score, dtype=np.float64)
    return mean + g * z, mean


def langevin_corrector(x, score, *, snr, alpha=1.0, seed, counter=0, offset=0, per_sample=False):
    """Langevin corrector of the score-SDE code: ``eps = 2 alpha (snr |z| / |s|)**2``.

    The norms are the batch means of the per-sample Euclidean norms (or each
    sample's own with ``per_sample``). Returns ``(x_next, x_mean, eps)``.
    """
    x = np.asarray(x)
    B = x.shape[0]
    z = _row_noise(x.shape, seed, counter, offset, x.dtype).reshape(B, -1)
    s = np.asarray(score, dtype=np.float64).reshape(B, -1)
    zn, sn = np.linalg.norm(z, axis=1), np.linalg.norm(s, axis=1)
    if not per_sample:
        zn, sn = np.full(B, zn.mean()), np.full(B, sn.mean())
    eps = 2 * np.asarray(alpha, dtype=np.float64) * (snr * zn / sn) ** 2
    x_next, mean = affine_step(x, score, 1.0, eps, np.sqrt(2 * eps), seed=seed, counter=counter,
                               offset=offset)
    return x_next, mean, eps


def mala_accept(x, score, logp, proposal, score_proposal, logp_proposal, step_size, *, seed,
                counter=0, offset=0):
    """Metropolis-Hastings decisions of MALA: True where the proposal is accepted.

    ``log r = logp' - logp + (|x' - x - h s|^2 - |x - x' - h s'|^2) / (4 h)``,
    accepted when ``log u < log r`` with ``u`` the float64 uniform at stream
    element ``2**62 + offset + b``; NaN rejects.
    """
    x = np.asarray(x, dtype=np.float64)
    B = x.shape[0]
    flat = lambda a: np.asarray(a, dtype=np.float64).reshape(B, -1)  # noqa: E731
    xf, pf, sf, spf = flat(x), flat(proposal), flat(score), flat(score_proposal)
    h = np.broadcast_to(np.asarray(step_size, dtype=np.float64), (B,))[:, None]
    fwd = np.sum((pf - xf - h * sf) ** 2, axis=1)
    bwd = np.sum((xf - pf - h * spf) ** 2, axis=1)
    log_r = (np.asarray(logp_proposal, dtype=np.float64) - np.asarray(logp, dtype=np.float64)
             - (bwd - fwd) / (4 * h[:, 0]))
    u = np.array([uniform(1, seed=seed, counter=counter, dtype=np.float64,
                          offset=2**62 + offset + b)[0] for b in range(B)])
    with np.errstate(invalid="ignore"):
        return np.log(u) < log_r
