"""scorekit's kernels for JAX arrays: usable under ``jax.jit`` and ``jax.grad``.

The compiled kernels run through ``jax.pure_callback``: inside a jitted
function XLA calls back into Python on the host with NumPy views of the
operands, the NumPy API runs, and its results come back as the outputs. The
cost is one host round trip per call (a few tens of microseconds on the CPU
backend, measured in benchmarks/RESULTS.md) and no fusion with neighbouring
XLA operations; on a GPU backend the operands also travel to the host and
back. Gradients are custom VJPs: the fused losses return their gradients with
the loss, and backward scales them; the steps are linear in the arrays they
differentiate.

Noise is the counter-based stream of :func:`scorekit.normal`: the same
``(seed, counter, offset)`` gives the same bits here as in the NumPy API and
in :mod:`scorekit.torch`. ``seed``, ``counter`` and ``offset`` are Python
integers (any value in ``[0, 2**64)``, fixed when the function is traced) or
JAX integer scalars (traced, so a jitted training step does not retrace when
the counter changes, inside ``lax.scan``, ``fori_loop`` and ``jax.checkpoint``
too; below ``2**31`` unless ``jax_enable_x64`` is on). float64 arrays need
``jax_enable_x64``: without it JAX would compute them in float32 (with the
float32 noise), so they are refused by name.

Differentiable arguments: ``perturb`` in ``x``, ``sigma`` and ``scale``;
``langevin_step`` and ``noisy_affine_step`` in ``x`` and ``score``;
``dsm_loss`` in ``score``; ``ssm_loss`` in ``score`` and ``jvp``;
``ism_loss`` in ``score`` and ``jac_trace``. Differentiating with respect to
any other argument raises an error rather than returning a silent zero.
``jax.vmap`` is not supported (the batch axis is already the first axis of
every argument): it raises JAX's error for callbacks without a ``vmap_method``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from . import _api
from ._validate import choice, count, shape_arg, uint64

__all__ = ["AffineStep", "dsm_loss", "ism_loss", "langevin_step", "noisy_affine_step", "normal",
           "perturb", "probes", "rademacher", "ssm_loss", "uniform"]

_REDUCTIONS = ("mean", "sum", "none")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_STREAM = ("seed", "counter", "offset")


class AffineStep(NamedTuple):
    x: jax.Array       # the next samples
    x_mean: jax.Array  # the same step without its noise


# ---------------------------------------------------------------- arguments

def _array(value, name: str, *, data: bool = True) -> jax.Array:
    """A float32/float64 JAX array (or tracer); TypeError naming ``name`` otherwise.
    ``data``: float64 needs jax_enable_x64 (without it JAX would compute in float32, a
    different noise stream); a coefficient is cast to the call's dtype anyway."""
    if isinstance(value, (bool, np.bool_)) or not hasattr(value, "dtype"):
        raise TypeError(f"{name} must be a JAX array, got {type(value).__name__}")
    try:
        dt = np.dtype(value.dtype)
    except TypeError:
        raise TypeError(f"{name} must be a JAX or NumPy array, got {type(value).__name__} "
                        f"of dtype {value.dtype}") from None
    if dt not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {value.dtype}")
    if data and dt == np.float64 and not jax.config.jax_enable_x64:
        raise TypeError(f"{name} is float64, which needs jax_enable_x64 (jax.config.update("
                        "'jax_enable_x64', True)); without it JAX would compute in float32")
    return jnp.asarray(value)


def _coeff(value, name: str):
    """A per-sample coefficient: a Python number (fixed at trace time) or a (B,) / 0-d array."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    return _array(value, name, data=False)


def _stream(seed, counter, offset):
    """Stream integers: Python ints are checked now; integer scalars are traced."""
    out = {}
    for value, name in zip((seed, counter, offset), _STREAM):
        if hasattr(value, "dtype"):
            if not jnp.issubdtype(value.dtype, jnp.integer) or jnp.ndim(value) != 0:
                raise TypeError(f"{name} must be an int or an integer scalar array, got "
                                f"{value.dtype} of shape {jnp.shape(value)}")
            out[name] = value
        else:
            out[name] = uint64(value, name)
    return out


def _split(named: dict):
    """Arrays to pass through the callback, and the static values to close over."""
    arrays = {k: v for k, v in named.items() if isinstance(v, jax.Array)}
    statics = {k: v for k, v in named.items() if k not in arrays}
    return arrays, statics


def _host_value(name, value):
    if name in _STREAM:
        return int(value)
    return np.asarray(value)


def _callback(host_fn, result_shapes, named: dict):
    """Run ``host_fn(**named)`` on the host with NumPy arrays; JAX arrays come back."""
    arrays, statics = _split(named)
    names = list(arrays)

    def call(*values):
        kwargs = dict(statics)
        kwargs.update({n: _host_value(n, v) for n, v in zip(names, values)})
        return host_fn(**kwargs)

    return jax.pure_callback(call, result_shapes, *(arrays[n] for n in names))


def _sds(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(shape), dtype)


def _rows(p, like):
    p = jnp.asarray(p, dtype=like.dtype)
    return p.reshape((-1,) + (1,) * (like.ndim - 1)) if p.ndim == 1 else p


def _row_sums(t):
    return t.reshape(t.shape[0], -1).sum(1) if t.ndim > 1 else t


def _reduce_to(rows, p):
    return (rows.sum() if jnp.ndim(p) == 0 else rows).astype(p.dtype)


def _zero(ct, like):
    return jnp.zeros_like(like) if isinstance(ct, SymbolicZero) else ct


def _custom_vjp(named: dict, diff: tuple, primal, bwd, fwd=None, stream=None):
    """``primal(values)`` with a custom VJP over the arrays among ``named``.

    ``named`` maps argument names to arrays or to Python floats (constants of
    the call); ``stream`` (seed, counter, offset: Python ints or traced integer
    scalars) joins them, its traced values as inputs without cotangents (a
    closure over them would leak tracers out of lax.scan, fori_loop and
    jax.checkpoint). ``primal`` gets all of them, the arrays as traced values;
    ``fwd(values)`` returns ``(output, residuals)`` (by default the output and
    ``values``, of which only the traced arrays are kept as residuals: a Python or
    NumPy integer stays a constant of the call, exact at any size); ``bwd(residuals,
    cts)`` returns a dict of cotangents for the names in ``diff``. Asking for the
    gradient of any other array raises.
    """
    named = dict(named, **(stream or {}))
    names = tuple(n for n, v in named.items() if isinstance(v, jax.Array))

    def values_of(arrays):
        return dict(named, **dict(zip(names, arrays)))

    f = jax.custom_vjp(lambda *arrays: primal(values_of(arrays)))

    def fwd_checked(*args):
        for arg, name in zip(args, names):
            if arg.perturbed and name not in diff:
                raise ValueError(f"scorekit.jax does not differentiate with respect to {name}: "
                                 f"wrap it in jax.lax.stop_gradient")
        arrays = [a.value for a in args]
        values = values_of(arrays)
        return fwd(values) if fwd else (primal(values), tuple(arrays))

    def bwd_all(res, cts):
        grads = bwd(res if fwd else values_of(res), cts)
        return tuple(grads.get(n) for n in names)

    f.defvjp(fwd_checked, bwd_all, symbolic_zeros=True)
    return f(*(named[n] for n in names))


def _dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in _FLOATS:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise TypeError("dtype float64 needs jax_enable_x64 (jax.config.update('jax_enable_x64', "
                        "True))")
    return dt


# ---------------------------------------------------------------- noise

def _fill(kind, shape, seed, counter, dtype, offset):
    shape, dt = shape_arg(shape), _dtype(dtype)
    named = dict(_stream(seed, counter, offset), shape=shape, dtype=dt)
    return _callback(lambda **kw: getattr(_api, kind)(**kw), _sds(shape, dt), named)


def normal(shape, *, seed, counter=0, dtype=jnp.float32, offset=0) -> jax.Array:
    """Standard normal noise: the bits of :func:`scorekit.normal` for the same stream."""
    return _fill("normal", shape, seed, counter, dtype, offset)


def uniform(shape, *, seed, counter=0, dtype=jnp.float32, offset=0) -> jax.Array:
    """Uniform noise on (0, 1): the bits of :func:`scorekit.uniform`."""
    return _fill("uniform", shape, seed, counter, dtype, offset)


def rademacher(shape, *, seed, counter=0, dtype=jnp.float32, offset=0) -> jax.Array:
    """Random signs: the values of :func:`scorekit.rademacher`."""
    return _fill("rademacher", shape, seed, counter, dtype, offset)


def probes(shape, *, kind="gaussian", seed, counter=0, dtype=jnp.float32, num_probes=None,
           offset=0) -> jax.Array:
    """The probes of :func:`scorekit.probes` (for the JVPs that :func:`ssm_loss` takes)."""
    shape, dt = shape_arg(shape), _dtype(dtype)
    kind = choice(kind, "kind", _api.PROBE_KINDS)
    out = shape if num_probes is None else \
        (shape[0], count(num_probes, "num_probes")) + shape[1:]
    named = dict(_stream(seed, counter, offset), shape=shape, dtype=dt, kind=kind,
                 num_probes=num_probes)
    return _callback(lambda **kw: _api.probes(**kw), _sds(out, dt), named)


# ---------------------------------------------------------------- perturb and steps

def perturb(x, sigma, *, seed, counter=0, scale=None, offset=0) -> jax.Array:
    """``scale * x + sigma * z``, as :func:`scorekit.perturb`; differentiable in x, sigma, scale."""
    x = _array(x, "x")
    named = {"x": x, "sigma": _coeff(sigma, "sigma"),
             "scale": 1.0 if scale is None else _coeff(scale, "scale")}
    stream = _stream(seed, counter, offset)

    def primal(v):
        return _callback(lambda **k: _api.perturb(**k), _sds(x.shape, x.dtype), v)

    def bwd(v, ct):
        ct = _zero(ct, x)
        grads = {"x": ct * _rows(v["scale"], ct)}
        if not isinstance(v["sigma"], float):
            z = normal(ct.shape, dtype=ct.dtype, **{n: v[n] for n in _STREAM})
            grads["sigma"] = _reduce_to(_row_sums(ct * z), v["sigma"])
        if not isinstance(v["scale"], float):
            grads["scale"] = _reduce_to(_row_sums(ct * v["x"]), v["scale"])
        return grads

    return _custom_vjp(named, ("x", "sigma", "scale"), primal, bwd, stream=stream)


def langevin_step(x, score, step_size, *, seed, counter=0, offset=0) -> jax.Array:
    """``x + h * score + sqrt(2 h) * z``, as :func:`scorekit.langevin_step`; differentiable
    in ``x`` and ``score``."""
    x, score = _array(x, "x"), _array(score, "score")
    named = {"x": x, "score": score, "step_size": _coeff(step_size, "step_size")}
    stream = _stream(seed, counter, offset)

    def primal(v):
        return _callback(lambda **k: _api.langevin_step(**k), _sds(x.shape, x.dtype), v)

    def bwd(v, ct):
        ct = _zero(ct, x)
        return {"x": ct, "score": ct * _rows(v["step_size"], ct)}

    return _custom_vjp(named, ("x", "score"), primal, bwd, stream=stream)


def noisy_affine_step(x, score, a, c, g, *, seed, counter=0, offset=0) -> AffineStep:
    """``x_mean = a x + c score``, ``x_next = x_mean + g z``, as
    :func:`scorekit.noisy_affine_step`; differentiable in ``x`` and ``score``."""
    x, score = _array(x, "x"), _array(score, "score")
    named = {"x": x, "score": score, "a": _coeff(a, "a"), "c": _coeff(c, "c"), "g": _coeff(g, "g")}
    stream = _stream(seed, counter, offset)
    shapes = (_sds(x.shape, x.dtype), _sds(x.shape, x.dtype))

    def primal(v):
        return _callback(lambda **k: tuple(_api.noisy_affine_step(**k)), shapes, v)

    def bwd(v, cts):
        total = _zero(cts[0], x) + _zero(cts[1], x)
        return {"x": total * _rows(v["a"], total), "score": total * _rows(v["c"], total)}

    return AffineStep(*_custom_vjp(named, ("x", "score"), primal, bwd, stream=stream))


# ---------------------------------------------------------------- losses

def _loss_shape(score, reduction):
    return _sds((score.shape[0],) if reduction == "none" else (), score.dtype)


def _loss_host(kernel, dtype, n_grads):
    """The NumPy loss kernel as a callback body: (loss as an array, gradients...).

    With ``n_grads = 0`` the kernel runs without its gradients (a forward-only call).
    """
    def host(**kw):
        if not n_grads:
            return (np.asarray(kernel(**kw, return_grad=False), dtype=dtype),)
        res = kernel(**kw)
        return (np.asarray(res[0], dtype=dtype),) + tuple(res[1:1 + n_grads])
    return host


def _scaled(ct, grad):
    if isinstance(ct, SymbolicZero):
        return jnp.zeros_like(grad)
    return _rows(ct, grad) * grad


def _fused_loss(kernel, named: dict, extra: dict, reduction: str, diff: tuple):
    """A loss whose kernel returns ``(loss, grad for each name in diff)``; ``extra``'s
    stream values go through the custom VJP's inputs (see ``_custom_vjp``)."""
    stream = {n: extra.pop(n) for n in _STREAM if n in extra}
    score = named["score"]
    shapes = (_loss_shape(score, reduction),) + tuple(_sds(named[n].shape, named[n].dtype)
                                                      for n in diff)

    def run(v, with_grads):
        host = _loss_host(kernel, score.dtype, len(diff) if with_grads else 0)
        return _callback(host, shapes if with_grads else shapes[:1],
                         dict(extra, **v, reduction=reduction))

    def primal(v):  # no gradient wanted: the kernel skips them
        return run(v, False)[0]

    def fwd(v):
        out = run(v, True)
        return out[0], out[1:]

    def bwd(grads, ct):
        return {n: _scaled(ct, g) for n, g in zip(diff, grads)}

    return _custom_vjp(named, diff, primal, bwd, fwd, stream=stream)


def dsm_loss(score, sigma, *, seed=None, counter=0, noise=None, weight="sigma2",
             reduction="mean", offset=0) -> jax.Array:
    """Denoising score matching loss, as :func:`scorekit.dsm_loss`; differentiable in ``score``.

    Returns an array of ``score``'s dtype: 0-d for "mean" and "sum", (B,) for "none".
    """
    score = _array(score, "score")
    reduction = choice(reduction, "reduction", _REDUCTIONS)
    if (seed is None) == (noise is None):
        raise ValueError("dsm_loss: pass exactly one of seed= and noise=")
    if isinstance(weight, str):
        if weight not in ("sigma2", "none"):
            raise ValueError(f"weight must be 'sigma2', 'none', a number or a (B,) array, "
                             f"got {weight!r}")
    else:
        weight = _coeff(weight, "weight")
    named = dict(score=score, sigma=_coeff(sigma, "sigma"))
    if noise is not None:
        named["noise"] = _array(noise, "noise")
        given = _stream(0, counter, offset)
        if any(not isinstance(given[n], int) or given[n] for n in ("counter", "offset")):
            raise ValueError("counter and offset select noise from a stream: they apply only "
                             "with seed=, not noise=")
        extra = {}
    else:
        extra = _stream(seed, counter, offset)
    if isinstance(weight, str):
        extra["weight"] = weight
    else:
        named["weight"] = weight
    return _fused_loss(_api.dsm_loss, named, extra, reduction, ("score",))


def ssm_loss(score, jvp, *, seed, counter=0, kind="gaussian", variance_reduction=True,
             reduction="mean", offset=0) -> jax.Array:
    """Sliced score matching, as :func:`scorekit.ssm_loss`; differentiable in score and jvp."""
    named = dict(score=_array(score, "score"), jvp=_array(jvp, "jvp"))
    extra = dict(_stream(seed, counter, offset), kind=choice(kind, "kind", _api.PROBE_KINDS),
                 variance_reduction=variance_reduction)
    return _fused_loss(_api.ssm_loss, named, extra, choice(reduction, "reduction", _REDUCTIONS),
                       ("score", "jvp"))


def ism_loss(score, jac_trace, *, reduction="mean") -> jax.Array:
    """Implicit score matching, as :func:`scorekit.ism_loss`; differentiable in both arrays."""
    named = dict(score=_array(score, "score"), jac_trace=_array(jac_trace, "jac_trace"))
    return _fused_loss(_api.ism_loss, named, {}, choice(reduction, "reduction", _REDUCTIONS),
                       ("score", "jac_trace"))
