"""Counter-based noise: normal, uniform and Rademacher arrays.

Every value is a pure function of ``(seed, counter, flat index)``: the same
call gives the same bits on any number of threads, and any slice of a stream
can be regenerated without the rest. The layout (documented in full in
``scorekit.reference`` and the README) is Philox4x32-10 with key
``(seed mod 2**32, seed >> 32)`` and counter words
``(j mod 2**32, j >> 32, counter mod 2**32, counter >> 32)`` for block ``j``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core, _gpu
from ._validate import out_dtype, output, sample_offset, shape_arg, stream


def _fill(kernel, shape, seed, counter, dtype, out, offset):
    if out is not None and type(out) is not np.ndarray and _gpu.on_cuda(out, "out"):
        return _gpu.fill(kernel.__name__, shape, seed, counter, dtype, out, offset)
    shape = shape_arg(shape)
    seed, counter = stream(seed, counter)
    D = math.prod(shape[1:]) if shape else 1
    offset = sample_offset(offset, shape[0] if shape else 1, D)
    out = output(out, shape, out_dtype(dtype, out))
    kernel(out, seed, counter, offset * D)
    return out


def normal(shape, *, seed, counter=0, dtype=None, out=None, offset=0):
    """Standard normal noise from the counter-based stream ``(seed, counter)``.

    Parameters
    ----------
    shape : int or tuple of int
        Output shape; element ``i`` in C order is element ``i`` of the stream.
    seed, counter : int
        Stream selectors, integers in ``[0, 2**64)``.
    dtype : {numpy.float32, numpy.float64}, optional
        Defaults to ``out.dtype`` when ``out`` is given, else float32.
    out : numpy.ndarray, optional
        C-contiguous, writeable array of ``shape`` and ``dtype`` to fill.
    offset : int
        Global index of the first row: the result holds rows ``offset ..`` of
        the stream viewed as rows of ``prod(shape[1:])`` elements (stream
        elements from ``offset * prod(shape[1:])``), the noise that
        :func:`scorekit.perturb` and the other kernels give the samples
        ``offset + b``.

    Returns
    -------
    numpy.ndarray
        float32: Box-Muller on word pairs of each Philox block (4 values per
        block); float64: one Box-Muller pair per block from two 52-bit
        uniforms. Values agree with the formula evaluated in higher precision
        to within ``2**-20 * max(1, |z|)`` (float32) and
        ``2**-48 * max(1, |z|)`` (float64).
    """
    return _fill(_core.normal, shape, seed, counter, dtype, out, offset)


def uniform(shape, *, seed, counter=0, dtype=None, out=None, offset=0):
    """Uniform noise on the open interval (0, 1) from the stream ``(seed, counter)``.

    float32 element ``i`` is ``((w >> 9) + 0.5) * 2**-23`` of word ``i % 4`` of
    block ``i // 4``; float64 element ``i`` is ``((a << 20 | b >> 12) + 0.5) * 2**-52``
    of the word pair ``(w0, w1)`` (even ``i``) or ``(w2, w3)`` (odd ``i``) of
    block ``i // 2``. Both are exact. Parameters as in :func:`normal`.
    """
    return _fill(_core.uniform, shape, seed, counter, dtype, out, offset)


def rademacher(shape, *, seed, counter=0, dtype=None, out=None, offset=0):
    """Random signs (+1 or -1) from the stream ``(seed, counter)``.

    Element ``i`` is +1 when the top bit of word ``i % 4`` of block ``i // 4``
    is 0, else -1 (for float32 and float64 alike). Parameters as in :func:`normal`.
    """
    return _fill(_core.rademacher, shape, seed, counter, dtype, out, offset)
