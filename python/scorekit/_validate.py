"""Argument checks shared by the public functions.

Every check raises before any kernel runs, so a failed call leaves ``out``
untouched. Errors name the argument, what was received and what is accepted.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from ._interop import as_numpy, host_view

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ACCEPTED = "float32 or float64"
_U64 = 1 << 64
_MAX_ELEMENTS = np.iinfo(np.intp).max // 8
_FINITE_MAX = {dt: float(np.finfo(dt).max) for dt in FLOAT_DTYPES}
# The smallest positive double that rounds to a nonzero value of each dtype is
# just above half the smallest subnormal: v > _ROUNDS_TO_ZERO[dt] <=> dt(v) > 0.
_ROUNDS_TO_ZERO = {np.dtype(np.float32): 2.0**-150, np.dtype(np.float64): 0.0}
_TINY = {dt: float(np.finfo(dt).tiny) for dt in FLOAT_DTYPES}
_HALF_MAX = {dt: v / 2 for dt, v in _FINITE_MAX.items()}
_F32, _F64 = FLOAT_DTYPES


def dtype_arg(dtype, name: str = "dtype") -> np.dtype:
    """Normalise a requested dtype; TypeError unless float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be {_ACCEPTED}, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be {_ACCEPTED}, got {dt}")
    return dt


def float_array(value, name: str) -> np.ndarray:
    """``value`` as a C-contiguous, native-order float32/float64 array (copied only if needed)."""
    if type(value) is np.ndarray:  # the common case, in few attribute reads
        dt = value.dtype
        if dt == _F32 or dt == _F64:
            flags = value.flags
            if flags.c_contiguous and flags.aligned:
                return value
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array, which is not supported: pass plain data "
                        "(e.g. .filled(...))")
    arr = value if isinstance(value, np.ndarray) else as_numpy(value, name)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.type)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a {_ACCEPTED} array, got dtype {arr.dtype}")
    if arr.flags.c_contiguous and arr.flags.aligned:
        return arr
    return np.array(arr, order="C", copy=True)


def batch_array(value, name: str) -> np.ndarray:
    """A float array of shape (B, ...) with at least one axis."""
    arr = float_array(value, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have shape (B, ...) with at least one axis, got shape ()")
    return arr


def same_dtype(dtype: np.dtype, **arrays: np.ndarray) -> None:
    """TypeError when arrays of one call mix dtypes."""
    for name, arr in arrays.items():
        if arr.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but the call's arrays are {dtype}: "
                "all arrays of one call must share one dtype"
            )


def same_shape(shape: tuple, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")


def _dtype_kind(value) -> str:
    """The NumPy kind of ``value``'s dtype (NumPy, JAX, CuPy or PyTorch), or "" when it has
    none (a Python number)."""
    dt = getattr(value, "dtype", None)
    if dt is None:
        return ""
    if isinstance(dt, np.dtype):
        return dt.kind
    name = str(dt)  # a PyTorch dtype (formatting a NumPy one would cost microseconds)
    return "b" if name == "torch.bool" else "c" if "complex" in name else "f"


def _is_bool(value) -> bool:
    """A bool, or a bool array or tensor of any framework (whose ``__index__`` works)."""
    return isinstance(value, (bool, np.bool_)) or _dtype_kind(value) == "b"


def integer(value, name: str, accepted: str) -> int:
    """``value`` as a Python int; TypeError for bools, non-integers and arrays with an
    axis. A 0-d integer tensor counts as its value, a PyTorch uint64 one above 2**63
    included."""
    if type(value) is int or (isinstance(value, np.integer)  # the common cases, quickly
                              and not isinstance(value, np.timedelta64)):
        return int(value)
    if _is_bool(value):
        raise TypeError(f"{name} must be {accepted}, got bool")
    shape = getattr(value, "shape", ())
    if shape != ():  # (a one-element tensor has __index__ too)
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} of shape "
                        f"{tuple(shape)}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__}") from None
    except RuntimeError as exc:  # PyTorch converts through int64 (a uint64 above 2**63)
        try:
            item = value.item() if getattr(value, "ndim", None) == 0 else None
        except RuntimeError:  # a meta tensor, say: it has no value
            item = None
        if type(item) is int:
            return item
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} ({exc})"
                        ) from None


def uint64(value, name: str) -> int:
    """A seed or counter: an integer in [0, 2**64)."""
    if type(value) is int and 0 <= value < _U64:
        return value
    v = integer(value, name, "an integer in [0, 2**64)")
    if not 0 <= v < _U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def stream(seed, counter) -> tuple[int, int]:
    """Validated (seed, counter) of a noise stream."""
    return uint64(seed, "seed"), uint64(counter, "counter")


def no_stream_with_noise(counter, offset) -> None:
    """With stored noise (``noise=``) the stream selectors must keep their defaults."""
    if uint64(counter, "counter") != 0 or uint64(offset, "offset") != 0:
        raise ValueError("counter and offset select noise from a stream: they apply only "
                         "with seed=, not noise=")


def sample_offset(offset, B: int, D: int, K: int = 1) -> int:
    """The global index of a batch's first sample (the ``offset`` of a shard).

    Sample ``b`` draws the stream rows of sample ``offset + b`` (``K`` rows of
    ``D`` elements each); they must lie below element 2**62.
    """
    offset = uint64(offset, "offset")
    if (offset + B) * K * max(D, 1) > 2**62:
        raise ValueError(f"offset = {offset} is too large: (offset + B) * D must not exceed "
                         "2**62 stream elements")
    return offset


def shape_arg(shape, name: str = "shape") -> tuple:
    """A shape: a non-negative integer or a sequence of them."""
    if type(shape) is int and 0 <= shape <= _MAX_ELEMENTS:
        return (shape,)
    try:
        dims = (operator.index(shape),)
    except TypeError:
        try:
            dims = tuple(shape)
        except TypeError:
            raise TypeError(f"{name} must be an int or a tuple of ints, got {shape!r}") from None
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)):
            raise TypeError(f"{name} must contain ints, got {shape!r}")
        try:
            d = operator.index(d)
        except TypeError:
            raise TypeError(f"{name} must contain ints, got {shape!r}") from None
        if d < 0:
            raise ValueError(f"{name} must not have negative dimensions, got {shape!r}")
        out.append(d)
    if math.prod(out) > _MAX_ELEMENTS:
        raise ValueError(f"{name} {tuple(out)} has more elements than an array can hold")
    return tuple(out)


def per_sample(value, name: str, batch: int, dtype: np.dtype, *, positive: bool = False,
               nonnegative: bool = False, doubled: bool = False) -> np.ndarray:
    """A scalar or a length-``batch`` parameter, cast to ``dtype``.

    A scalar (Python or NumPy number, or 0-d array) and a sequence take the
    call's dtype; a (B,) ndarray must already have it. Returns a 0-d array (one
    value for every sample) or a contiguous (B,) array. Values must be finite
    after the cast, and > 0 (before and after it) or >= 0 when asked; with
    ``doubled``, twice each value must be finite too (a step size h whose
    noise scale is sqrt(2 h)).
    """
    if type(value) is float or type(value) is int:  # the common case, checked cheaply
        return _scalar(value, name, dtype, positive, nonnegative, doubled)
    if type(value) is np.ndarray and value.ndim:  # the common array case, in few checks
        return _sample_array(value, name, batch, dtype, positive, nonnegative, doubled)
    return _per_sample(value, name, batch, dtype, positive, nonnegative, doubled)


def _too_large(arr: np.ndarray, name: str):
    """The error for a value whose double overflows ``arr``'s dtype."""
    half = _HALF_MAX[arr.dtype]  # exact: 2 * v is finite exactly when |v| <= half
    return ValueError(f"{name} must be at most {half:g} in {arr.dtype} (twice it must be "
                      f"finite), got {_worst(arr, ~(np.abs(arr) <= half))}")


def _per_sample(value, name, batch, dtype, positive, nonnegative, doubled) -> np.ndarray:
    """per_sample of anything but a Python number or an ndarray with axes."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or a length-B array, got bool")
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array, which is not supported: pass plain data "
                        "(e.g. .filled(...))")
    if not isinstance(value, (np.ndarray, numbers.Real)) and hasattr(
            type(value), "__dlpack_device__"):  # another framework's array: NumPy's view of it
        value = as_numpy(value, name)            # (one NumPy cannot take is refused by name)
    checks = (positive, nonnegative, doubled)
    if isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0):
        if isinstance(value, np.ndarray) and value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real number, got dtype {value.dtype}")
        return _scalar(value, name, dtype, *checks)
    if isinstance(value, np.ndarray):
        return _sample_array(value, name, batch, dtype, *checks)
    given = np.asarray(value)  # a sequence: its values take the call's dtype
    if given.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real number or a length-B array, "
                        f"got values of dtype {given.dtype}")
    _sign(given, name, positive, nonnegative)  # before rounding can make -1e-50 into -0.0
    with np.errstate(over="ignore", under="ignore"):
        arr = given.astype(dtype)
    return _checked_samples(arr, name, batch, dtype, *checks)


def _sample_array(value, name, batch, dtype, positive, nonnegative, doubled) -> np.ndarray:
    """per_sample of an ndarray with at least one axis: it must have the call's dtype."""
    arr = float_array(value, name)
    if arr.dtype != dtype:
        same_dtype(dtype, **{name: arr})
    return _checked_samples(arr, name, batch, dtype, positive, nonnegative, doubled)


def _checked_samples(arr, name, batch, dtype, positive, nonnegative, doubled) -> np.ndarray:
    """A (B,) array of the call's dtype, its values checked (``doubled`` comes with
    ``positive`` or ``nonnegative``: the largest value bounds the magnitudes)."""
    if arr.shape != (batch,):
        raise ValueError(
            f"{name} must be a scalar or have shape (B,) = ({batch},), got shape {arr.shape}"
        )
    if arr.size:  # the common case in two reductions: NaN fails every comparison below
        lo, hi = np.minimum.reduce(arr), np.maximum.reduce(arr)
        if (hi <= _HALF_MAX[dtype] if doubled else hi < np.inf) and (
                lo > 0 if positive else lo >= 0 if nonnegative else lo > -np.inf):
            return arr
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (in {dtype}), got non-finite values")
    _sign(arr, name, positive, nonnegative, dtype)
    if doubled and not np.all(np.abs(arr) <= _HALF_MAX[dtype]):
        raise _too_large(arr, name)
    return arr


def _sign(arr, name, positive, nonnegative, dtype=None) -> None:
    # (messages formed only on failure: formatting a dtype costs more than the checks)
    if positive and not (arr > 0).all():
        where = f" (in {dtype})" if dtype is not None else ""
        raise ValueError(f"{name} must be > 0{where}, got {_worst(arr, ~(arr > 0))}")
    if nonnegative and not (arr >= 0).all():
        raise ValueError(f"{name} must be >= 0, got {_worst(arr, ~(arr >= 0))}")


def _scalar(value, name, dtype, positive, nonnegative, doubled=False) -> np.ndarray:
    """One value for every sample, checked with Python floats (the cheap path)."""
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not -_FINITE_MAX[dtype] <= v <= _FINITE_MAX[dtype]:  # also false for NaN
        raise ValueError(f"{name} must be finite (in {dtype}), got {v}")
    if nonnegative and not v >= 0:  # checked before rounding can make -1e-50 into -0.0
        raise ValueError(f"{name} must be >= 0, got {v}")
    arr = np.array(v, dtype=dtype)
    # below the smallest normal, the cast itself decides (denormals may be flushed to zero)
    if positive and not (v > _ROUNDS_TO_ZERO[dtype] and (v >= _TINY[dtype] or float(arr) > 0)):
        raise ValueError(f"{name} must be > 0 (in {dtype}), got {float(arr) if v > 0 else v}")
    if doubled and not abs(float(arr)) <= _HALF_MAX[dtype]:
        raise _too_large(arr, name)
    return arr


def _worst(arr: np.ndarray, bad: np.ndarray):
    return arr.flat[int(np.flatnonzero(bad)[0])] if arr.ndim else arr[()]


def out_array(out, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Check a user-supplied output array: exact shape and dtype, C-contiguous, writeable."""
    if type(out) is np.ndarray and out.dtype == dtype and out.shape == tuple(shape):
        flags = out.flags
        if flags.c_contiguous and flags.aligned and flags.writeable:
            return out
    if not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.aligned:
        raise ValueError(f"{name} must be aligned to its dtype's size")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def out_dtype(dtype, out) -> np.dtype:
    """The requested dtype, else ``out``'s (which must then be float32 or float64), else float32."""
    if dtype is not None:
        return dtype_arg(dtype)
    if not isinstance(out, np.ndarray):
        return np.dtype(np.float32)
    if out.dtype not in FLOAT_DTYPES:
        raise ValueError(f"out must have dtype float32 or float64 (native byte order), "
                         f"got {out.dtype}")
    return out.dtype


def output(out, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A new C-contiguous array, or the user's ``out`` once checked."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    return out_array(out, "out", shape, dtype)


def output_unaliased(out, shape: tuple, dtype: np.dtype, arrays: tuple, params: tuple = ()):
    """``output(...)``, with ``arrays`` (inputs of the output's shape) passed through
    ``unaliased`` and ``params`` (per-sample parameters) through ``param_unaliased``.
    A new output overlaps nothing, so then nothing is checked. Returns
    ``(out, arrays, params)``."""
    if out is None:
        return np.empty(shape, dtype=dtype), arrays, params
    out = out_array(out, "out", shape, dtype)
    return (out, tuple([unaliased(a, out) for a in arrays]),
            tuple([param_unaliased(p, out) if p.ndim else p for p in params]))


def param_unaliased(param: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A per-sample parameter, copied when it lies in ``out`` (which the kernel overwrites)."""
    return param.copy() if param.ndim and np.may_share_memory(param, out) else param


def unaliased(arr: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``arr``, or a copy of it when it overlaps ``out`` other than element for element."""
    if arr is out or not np.may_share_memory(arr, out):
        return arr
    same = (
        arr.__array_interface__["data"][0] == out.__array_interface__["data"][0]
        and arr.strides == out.strides
        and arr.shape == out.shape
    )
    return arr if same else arr.copy()


def count(value, name: str, minimum: int = 1) -> int:
    """An integer count >= ``minimum``."""
    v = integer(value, name, f"an int >= {minimum}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def choice(value, name: str, options: tuple) -> str:
    """One of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def nonnegative_float(value, name: str) -> float:
    """A finite float >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {v}")
    return v


def flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


REDUCTIONS = ("mean", "sum", "none")
PROBE_KINDS = ("rademacher", "gaussian", "sphere")  # the order of scorekit::ProbeKind


def reduction_args(reduction, return_grad) -> tuple:
    """A loss's ``reduction`` (one of REDUCTIONS) and ``return_grad`` flag."""
    return choice(reduction, "reduction", REDUCTIONS), flag(return_grad, "return_grad")


def batch_scale(reduction: str, B: int) -> float:
    """The factor of the per-sample gradients: 1/B for a mean over a non-empty batch."""
    return 1.0 / B if (reduction == "mean" and B > 0) else 1.0


def probe_count(score_shape: tuple, jvp_shape: tuple) -> int:
    """K, the probes per sample, from ``jvp``'s shape (score's, or (B, K) + score's rest)."""
    B, rest = score_shape[0], score_shape[1:]
    if tuple(jvp_shape) == tuple(score_shape):
        return 1
    if (len(jvp_shape) == len(score_shape) + 1 and jvp_shape[0] == B
            and tuple(jvp_shape[2:]) == tuple(rest) and jvp_shape[1] >= 1):
        return int(jvp_shape[1])
    raise ValueError(f"jvp must have score's shape {tuple(score_shape)} or (B, K) + "
                     f"{tuple(rest)} for K probes, got {tuple(jvp_shape)}")


def coefficient(value, name: str, B: int, dtype, *, nonnegative: bool = False):
    """A per-sample coefficient computed in float64 (number or (B,) array), cast to dtype
    (the same from every framework: another's array is viewed as NumPy first)."""
    if type(value) is not float and type(value) is not int and not isinstance(
            value, (np.ndarray, numbers.Real)):  # (the common Python numbers checked cheaply)
        value = host_view(value, name)
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "fiu":
        if value.shape != (B,):
            raise ValueError(f"{name} must be a scalar or have shape (B,) = ({B},), got "
                             f"shape {value.shape}")
        value = value.astype(dtype)
    arr = per_sample(value, name, B, dtype)
    if nonnegative and not np.all(arr >= 0):
        raise ValueError(f"{name} must be >= 0")
    return arr


def real_values(value, name: str, *, returned: bool = False) -> np.ndarray:
    """``value`` as a NumPy array of real numbers (float or integer dtype, any framework);
    TypeError for bool, complex, string and object values. ``returned``: ``name`` is a
    function whose result this is."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} {'returned' if returned else 'is'} a masked array")
    arr = value if isinstance(value, np.ndarray) else as_numpy(value, name)
    if arr.dtype.kind not in "fiu":
        what = "return" if returned else "hold"
        raise TypeError(f"{name} must {what} real numbers (a float or integer dtype), got "
                        f"dtype {arr.dtype}")
    return arr


def log_densities(value, name: str, B: int) -> np.ndarray:
    """A (B,) float64 array of log-densities (NaN allowed: the kernels reject it)."""
    if (type(value) is np.ndarray and value.dtype == _F64 and value.shape == (B,)
            and value.flags.c_contiguous):  # the common case, in few checks
        return value
    arr = real_values(value, name)
    if arr.shape != (B,):
        raise ValueError(f"{name} must have shape (B,) = ({B},), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def snr_arg(snr) -> float:
    """The corrector's signal-to-noise ratio: one real number, finite and >= 0."""
    if type(snr) is not float and (
            isinstance(snr, (str, bytes, list, tuple, complex, bool)) or getattr(snr, "ndim", 0)
            or _dtype_kind(snr) in ("b", "c", "U", "S")):
        raise TypeError(f"snr must be a real number (one for the whole batch), got "
                        f"{type(snr).__name__}")
    try:
        v = float(snr)  # a number, or a 0-d array or tensor of any framework or device
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"snr must be a real number, got {type(snr).__name__} ({exc})") from None
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"snr must be finite and >= 0, got {snr!r}")
    return v
