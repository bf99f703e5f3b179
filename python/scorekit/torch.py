"""scorekit's kernels as PyTorch operators: differentiable, torch.compile-safe, zero-copy.

Each function takes CPU or CUDA tensors (float32 or float64) and returns
tensors on the same device. The work is done by the same compiled kernels as
the NumPy API: on the CPU on NumPy views of the tensors' memory, on a GPU by
the CUDA backend (a CUDA build of scorekit) on the tensors themselves, on the
current stream, with the same bits; no copies of contiguous inputs, outputs
allocated by PyTorch and written in place by the kernel. On a GPU, "mean" and
"sum" losses are reduced there (nothing waits for the kernels). The
operators are registered with ``torch.library`` under the ``scorekit``
namespace, with fake (meta) implementations, so ``torch.compile`` (also with
``fullgraph=True``) traces through them without graph breaks, and with
autograd formulas, so they sit in a training step like any PyTorch op.

Noise is the counter-based stream of :func:`scorekit.normal`: the same
``(seed, counter, offset)`` gives the same bits here as in the NumPy API, on
any number of threads and for any split of the batch (``offset`` is the global
index of the first sample of a shard).

Integers travel through the operator schemas as int64: seeds take the whole
range ``[0, 2**64)`` (mapped to and from two's complement), counters and
offsets must be below ``2**63``.

Gradients: ``perturb`` is differentiable in ``x``, ``sigma`` and ``scale``;
``langevin_step`` and ``noisy_affine_step`` in ``x`` and ``score``;
``dsm_loss`` in ``score`` (the fused kernel returns the gradient with the
loss, and backward scales it); ``ssm_loss`` in ``score`` and ``jvp``;
``ism_loss`` in ``score`` and ``jac_trace``. A tensor that requires grad in
any other argument is refused with an error rather than given a silent zero;
the losses have first derivatives only (``create_graph=True`` is refused).

Tensors on other devices are refused with an error that names the argument.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import NamedTuple, Optional

import numpy as np
import torch

from . import _api, _gpu
from ._validate import choice, count, flag, no_stream_with_noise, shape_arg, uint64

__all__ = ["AffineStep", "dsm_loss", "ism_loss", "langevin_step", "langevin_step_",
           "noisy_affine_step", "normal", "perturb", "perturb_", "probes", "rademacher", "ssm_loss",
           "uniform"]

_U64 = 1 << 64
_I64 = 1 << 63
_DTYPES = (torch.float32, torch.float64)
_REDUCTIONS = ("mean", "sum", "none")


class AffineStep(NamedTuple):
    x: torch.Tensor       # the next samples
    x_mean: torch.Tensor  # the same step without its noise


# ---------------------------------------------------------------- argument handling

def _compiling() -> bool:
    return torch.compiler.is_compiling()


def _tensor(t, name: str) -> torch.Tensor:
    """A float32/float64 CPU or CUDA tensor; TypeError naming ``name`` otherwise."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type not in ("cpu", "cuda"):
        raise TypeError(f"{name} is on {t.device}, but the scorekit.torch ops run on the CPU "
                        "and on CUDA devices")
    if t.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
    return t


def _param(value, name: str, *, differentiable: bool = False) -> torch.Tensor:
    """A per-sample parameter as a tensor: a number becomes a 0-d float64 tensor.

    The kernel's own checks (finite, positive, shape (B,), dtype) run on it
    later; a number keeps float64 so that those checks see its exact value.
    """
    if isinstance(value, torch.Tensor):
        _tensor(value, name)
        if value.requires_grad and not differentiable and torch.is_grad_enabled():
            raise ValueError(f"{name} requires grad, but scorekit.torch does not differentiate "
                             f"with respect to {name}: pass {name}.detach()")
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or a tensor of shape (B,), got bool")
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or a tensor of shape (B,), "
                        f"got {type(value).__name__}")
    try:
        return torch.tensor(float(value), dtype=torch.float64)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r}") from None


def _stream(seed, counter, offset) -> tuple[int, int, int]:
    """Validated stream integers, the seed in two's complement for the int64 schema.

    While torch.compile traces, the same ranges are checked with plain
    comparisons only: on a counter that changes from step to step (a dynamic
    integer) they become range guards rather than specialisations, so the
    compiled function is not recompiled for each new counter.
    """
    if _compiling():
        for value, name, top in ((seed, "seed", _U64), (counter, "counter", _I64),
                                 (offset, "offset", _I64)):
            if value < 0 or value >= top:
                raise ValueError(f"{name} must be in [0, {'2**64' if top == _U64 else '2**63'})"
                                 f" in scorekit.torch")
    else:
        seed = uint64(seed, "seed")
        for value, name in ((counter, "counter"), (offset, "offset")):
            if uint64(value, name) >= _I64:
                raise ValueError(f"{name} must be below 2**63 in scorekit.torch, got {value}")
    return (seed - _U64 if seed >= _I64 else seed), counter, offset


def _need_grad(*tensors: Optional[torch.Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _host(t: Optional[torch.Tensor]):
    """What the NumPy API takes for a tensor: a zero-copy NumPy view of a CPU tensor,
    a CUDA tensor itself (its GPU path); None stays None.

    ``Tensor.numpy()`` shares the tensor's memory as DLPack does
    (``numpy.from_dlpack`` gives the same view) at a third of the cost.
    """
    if t is None:
        return None
    return t.detach() if t.is_cuda else t.detach().numpy()


def _wrap(a) -> torch.Tensor:
    """A NumPy result as a tensor sharing its memory (a CUDA result is one already)."""
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))


def _losses_on(t: torch.Tensor):
    """The context for a loss call: on a GPU, reduced losses stay there."""
    return _gpu.device_losses() if t.is_cuda else contextlib.nullcontext()


def _unsigned(seed: int) -> int:
    return seed % _U64


def _rows(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A 0-d or (B,) parameter shaped to broadcast over ``like``'s rows, in its dtype and on
    its device (a CPU (B,) parameter of a CUDA call too)."""
    p = p.to(device=like.device, dtype=like.dtype)
    return p.reshape((-1,) + (1,) * (like.dim() - 1)) if p.dim() == 1 else p


def _row_sums(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1) if t.dim() > 1 else t


def _reduce_to(rows: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-sample gradient sums reduced to the shape, dtype and device of parameter ``p``."""
    return (rows.sum() if p.dim() == 0 else rows).to(device=p.device, dtype=p.dtype)


def _loss_like(score: torch.Tensor, reduction: str) -> torch.Tensor:
    return score.new_empty((score.shape[0],) if reduction == "none" else ())


def _loss_tensor(loss, dtype: torch.dtype) -> torch.Tensor:
    """A loss from the NumPy API as a tensor of ``dtype``: (B,) arrays as they are, a
    reduced loss (a float, or a 0-d float64 CUDA tensor) rounded to ``dtype``."""
    if isinstance(loss, torch.Tensor):
        return loss.to(dtype)
    if isinstance(loss, np.ndarray):
        return _wrap(loss)
    return torch.tensor(loss, dtype=dtype)


def _scaled(grad_loss: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """``d(loss)/d(input)`` times the incoming gradient (0-d, or (B,) for reduction 'none').

    The saved gradient is a constant of the graph, so the result has no
    derivative of its own: a backward that builds a graph (``create_graph=True``,
    Hessians, ``gradgradcheck``) is refused instead of returning zeros.
    """
    if torch.is_grad_enabled() and not _compiling():
        raise RuntimeError("scorekit.torch losses have first derivatives only: backward with "
                           "create_graph=True (second derivatives) is not supported")
    return _rows(grad_loss, saved) * saved


def _new_like(t: torch.Tensor) -> torch.Tensor:
    """An output of ``t``'s shape and dtype, C-contiguous like the kernel's (whatever t's strides)."""
    return torch.empty_like(t, memory_format=torch.contiguous_format)


def _empty_like_grad(t: torch.Tensor, need: bool) -> torch.Tensor:
    """A gradient output: ``t``'s shape when computed, else an empty placeholder."""
    return _new_like(t) if need else t.new_empty((0,))


# ---------------------------------------------------------------- noise

_FILLS = {"normal": _api.normal, "uniform": _api.uniform, "rademacher": _api.rademacher}


@torch.library.custom_op("scorekit::noise", mutates_args=())
def _noise_op(shape: list[int], dtype: torch.dtype, device: torch.device, kind: str, seed: int,
              counter: int, offset: int) -> torch.Tensor:
    out = torch.empty(shape, dtype=dtype, device=device)
    _FILLS[kind](tuple(shape), seed=_unsigned(seed), counter=counter, offset=offset,
                 out=_host(out))
    return out


@_noise_op.register_fake
def _(shape, dtype, device, kind, seed, counter, offset):
    return torch.empty(shape, dtype=dtype, device=device)


@torch.library.custom_op("scorekit::probes", mutates_args=())
def _probes_op(shape: list[int], dtype: torch.dtype, device: torch.device, kind: str,
               num_probes: int, seed: int, counter: int, offset: int) -> torch.Tensor:
    out = torch.empty(_probe_shape(shape, num_probes), dtype=dtype, device=device)
    _api.probes(tuple(shape), kind=kind, seed=_unsigned(seed), counter=counter,
                num_probes=num_probes or None, offset=offset, out=_host(out))
    return out


@_probes_op.register_fake
def _(shape, dtype, device, kind, num_probes, seed, counter, offset):
    return torch.empty(_probe_shape(shape, num_probes), dtype=dtype, device=device)


def _probe_shape(shape, num_probes):
    return list(shape) if not num_probes else [shape[0], num_probes] + list(shape[1:])


def _shape_dtype(shape, dtype) -> list[int]:
    if dtype not in _DTYPES:
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if _compiling():
        return list(shape) if isinstance(shape, (tuple, list, torch.Size)) else [shape]
    return list(shape_arg(shape))


def _device(device) -> torch.device:
    """A CPU or CUDA device (None: the CPU)."""
    dev = torch.device("cpu" if device is None else device)
    if dev.type not in ("cpu", "cuda"):
        raise TypeError(f"device must be a CPU or CUDA device, got {dev}")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _fill(kind, shape, seed, counter, dtype, offset, device) -> torch.Tensor:
    return _noise_op(_shape_dtype(shape, dtype), dtype, _device(device), kind,
                     *_stream(seed, counter, offset))


def normal(shape, *, seed, counter=0, dtype=torch.float32, offset=0, device=None) -> torch.Tensor:
    """Standard normal noise: the bits of :func:`scorekit.normal` for the same stream, on
    ``device`` (the CPU by default, or a CUDA device)."""
    return _fill("normal", shape, seed, counter, dtype, offset, device)


def uniform(shape, *, seed, counter=0, dtype=torch.float32, offset=0,
            device=None) -> torch.Tensor:
    """Uniform noise on (0, 1): the bits of :func:`scorekit.uniform` for the same stream."""
    return _fill("uniform", shape, seed, counter, dtype, offset, device)


def rademacher(shape, *, seed, counter=0, dtype=torch.float32, offset=0,
               device=None) -> torch.Tensor:
    """Random signs: the values of :func:`scorekit.rademacher` for the same stream."""
    return _fill("rademacher", shape, seed, counter, dtype, offset, device)


def probes(shape, *, kind="gaussian", seed, counter=0, dtype=torch.float32, num_probes=None,
           offset=0, device=None) -> torch.Tensor:
    """The probes of :func:`scorekit.probes`, e.g. for the JVPs that :func:`ssm_loss` takes."""
    shape = _shape_dtype(shape, dtype)
    kind = choice(kind, "kind", _api.PROBE_KINDS)
    if num_probes is not None:
        count(num_probes, "num_probes")
    return _probes_op(shape, dtype, _device(device), kind, num_probes or 0,
                      *_stream(seed, counter, offset))


# ---------------------------------------------------------------- perturb

@torch.library.custom_op("scorekit::perturb", mutates_args=())
def _perturb_op(x: torch.Tensor, sigma: torch.Tensor, scale: Optional[torch.Tensor], seed: int,
                counter: int, offset: int) -> torch.Tensor:
    out = _new_like(x)
    _perturb_into(out, x, sigma, scale, seed, counter, offset)
    return out


def _perturb_into(out, x, sigma, scale, seed, counter, offset) -> None:
    _api.perturb(_host(x), _host(sigma), scale=_host(scale), seed=_unsigned(seed),
                 counter=counter, offset=offset, out=_host(out))


@_perturb_op.register_fake
def _(x, sigma, scale, seed, counter, offset):
    return _new_like(x)


def _perturb_setup(ctx, inputs, output):
    x, sigma, scale, seed, counter, offset = inputs
    ctx.stream = (seed, counter, offset)
    ctx.save_for_backward(x if ctx.needs_input_grad[2] else None, sigma, scale)


def _perturb_backward(ctx, grad):
    x, sigma, scale = ctx.saved_tensors
    grad_x = grad_sigma = grad_scale = None
    if ctx.needs_input_grad[0]:
        grad_x = grad if scale is None else grad * _rows(scale, grad)
    if ctx.needs_input_grad[1]:
        z = _noise_op(list(grad.shape), grad.dtype, grad.device, "normal", *ctx.stream)
        grad_sigma = _reduce_to(_row_sums(grad * z), sigma)
    if ctx.needs_input_grad[2]:
        grad_scale = _reduce_to(_row_sums(grad * x), scale)
    return grad_x, grad_sigma, grad_scale, None, None, None


_perturb_op.register_autograd(_perturb_backward, setup_context=_perturb_setup)


def perturb(x, sigma, *, seed, counter=0, scale=None, offset=0) -> torch.Tensor:
    """``scale * x + sigma * z`` with ``z`` regenerated from ``(seed, counter)``.

    As :func:`scorekit.perturb`; differentiable in ``x``, ``sigma`` and
    ``scale`` (the gradient in ``sigma`` regenerates ``z``).
    """
    x = _tensor(x, "x")
    sigma = _param(sigma, "sigma", differentiable=True)
    scale = None if scale is None else _param(scale, "scale", differentiable=True)
    return _perturb_op(x, sigma, scale, *_stream(seed, counter, offset))


@torch.library.custom_op("scorekit::perturb_", mutates_args=("x",))
def _perturb_inplace_op(x: torch.Tensor, sigma: torch.Tensor, scale: Optional[torch.Tensor],
                        seed: int, counter: int, offset: int) -> None:
    _perturb_into(x, x, sigma, scale, seed, counter, offset)


def perturb_(x, sigma, *, seed, counter=0, scale=None, offset=0) -> torch.Tensor:
    """In-place :func:`perturb` of a contiguous tensor ``x`` (not differentiable); returns ``x``."""
    x = _inplace_target(x)
    sigma = _param(sigma, "sigma")
    scale = None if scale is None else _param(scale, "scale")
    _perturb_inplace_op(x, sigma, scale, *_stream(seed, counter, offset))
    return x


def _inplace_target(x) -> torch.Tensor:
    x = _tensor(x, "x")
    if not x.is_contiguous():
        raise ValueError("x must be contiguous for an in-place update")
    if not _compiling() and (x.is_neg() or x.is_conj()):  # (traced: a graph break)
        raise ValueError("x carries PyTorch's lazy negation or conjugation (a view such as "
                         "z.conj().imag), which an in-place update cannot write through: "
                         "update x.resolve_neg() and use the result")
    if _need_grad(x):
        raise ValueError("in-place scorekit ops are not differentiable: x requires grad (run "
                         "them under torch.no_grad() on a tensor that does not require grad)")
    return x


# ---------------------------------------------------------------- Langevin step

@torch.library.custom_op("scorekit::langevin_step", mutates_args=())
def _langevin_op(x: torch.Tensor, score: torch.Tensor, step_size: torch.Tensor, seed: int,
                 counter: int, offset: int) -> torch.Tensor:
    out = _new_like(x)
    _langevin_into(out, x, score, step_size, seed, counter, offset)
    return out


def _langevin_into(out, x, score, step_size, seed, counter, offset) -> None:
    _api.langevin_step(_host(x), _host(score), _host(step_size), seed=_unsigned(seed),
                       counter=counter, offset=offset, out=_host(out))


@_langevin_op.register_fake
def _(x, score, step_size, seed, counter, offset):
    return _new_like(x)


def _langevin_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[2])


def _langevin_backward(ctx, grad):
    (step,) = ctx.saved_tensors
    grad_score = grad * _rows(step, grad) if ctx.needs_input_grad[1] else None
    return grad, grad_score, None, None, None, None


_langevin_op.register_autograd(_langevin_backward, setup_context=_langevin_setup)


def langevin_step(x, score, step_size, *, seed, counter=0, offset=0) -> torch.Tensor:
    """``x + h * score + sqrt(2 h) * z``, as :func:`scorekit.langevin_step`.

    Differentiable in ``x`` and ``score``.
    """
    x = _tensor(x, "x")
    score = _tensor(score, "score")
    step = _param(step_size, "step_size")
    return _langevin_op(x, score, step, *_stream(seed, counter, offset))


@torch.library.custom_op("scorekit::langevin_step_", mutates_args=("x",))
def _langevin_inplace_op(x: torch.Tensor, score: torch.Tensor, step_size: torch.Tensor, seed: int,
                         counter: int, offset: int) -> None:
    _langevin_into(x, x, score, step_size, seed, counter, offset)


def langevin_step_(x, score, step_size, *, seed, counter=0, offset=0) -> torch.Tensor:
    """In-place :func:`langevin_step` of a contiguous ``x`` (not differentiable); returns ``x``.

    The allocation-free form for sampling loops (under ``torch.no_grad()``).
    """
    x = _inplace_target(x)
    score = _tensor(score, "score")
    if _need_grad(score):
        raise ValueError("in-place scorekit ops are not differentiable: score requires grad "
                         "(use langevin_step, or score.detach())")
    step = _param(step_size, "step_size")
    _langevin_inplace_op(x, score, step, *_stream(seed, counter, offset))
    return x


# ---------------------------------------------------------------- sampler steps

@torch.library.custom_op("scorekit::noisy_affine_step", mutates_args=())
def _affine_op(x: torch.Tensor, score: torch.Tensor, a: torch.Tensor, c: torch.Tensor,
               g: torch.Tensor, seed: int, counter: int,
               offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    out = _new_like(x)
    res = _api.noisy_affine_step(_host(x), _host(score), _host(a), _host(c), _host(g),
                                 seed=_unsigned(seed), counter=counter, offset=offset,
                                 out=_host(out))
    return out, _wrap(res.x_mean)


@_affine_op.register_fake
def _(x, score, a, c, g, seed, counter, offset):
    return (_new_like(x),
            _new_like(x))


def _affine_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[2], inputs[3])


def _affine_backward(ctx, grad_next, grad_mean):
    a, c = ctx.saved_tensors
    total = grad_next if grad_mean is None else (grad_mean if grad_next is None
                                                 else grad_next + grad_mean)
    grad_x = total * _rows(a, total) if ctx.needs_input_grad[0] else None
    grad_score = total * _rows(c, total) if ctx.needs_input_grad[1] else None
    return grad_x, grad_score, None, None, None, None, None, None


_affine_op.register_autograd(_affine_backward, setup_context=_affine_setup)


def noisy_affine_step(x, score, a, c, g, *, seed, counter=0, offset=0) -> AffineStep:
    """``x_mean = a x + c score``, ``x_next = x_mean + g z``: every predictor and corrector.

    As :func:`scorekit.noisy_affine_step` (coefficients are numbers or (B,)
    tensors); returns ``AffineStep(x, x_mean)``, differentiable in ``x`` and ``score``.
    """
    x = _tensor(x, "x")
    score = _tensor(score, "score")
    a, c, g = (_param(v, n) for v, n in ((a, "a"), (c, "c"), (g, "g")))
    return AffineStep(*_affine_op(x, score, a, c, g, *_stream(seed, counter, offset)))


# ---------------------------------------------------------------- denoising score matching

@torch.library.custom_op("scorekit::dsm_loss", mutates_args=())
def _dsm_op(score: torch.Tensor, sigma: torch.Tensor, weight: Optional[torch.Tensor],
            noise: Optional[torch.Tensor], seed: int, counter: int, offset: int, reduction: str,
            need_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    s = _host(score)
    stream = ({"noise": _host(noise)} if noise is not None else
              {"seed": _unsigned(seed), "counter": counter, "offset": offset})
    with _losses_on(score):
        res = _api.dsm_loss(s, _host(sigma),
                            weight="sigma2" if weight is None else _host(weight),
                            reduction=reduction, return_grad=need_grad, **stream)
    loss, grad = res if need_grad else (res, None)
    return (_loss_tensor(loss, score.dtype),
            _wrap(grad) if need_grad else _empty_like_grad(score, False))


@_dsm_op.register_fake
def _(score, sigma, weight, noise, seed, counter, offset, reduction, need_grad):
    return _loss_like(score, reduction), _empty_like_grad(score, need_grad)


def _dsm_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])


def _dsm_backward(ctx, grad_loss, _grad_of_grad):
    (grad,) = ctx.saved_tensors
    return _scaled(grad_loss, grad), None, None, None, None, None, None, None, None


_dsm_op.register_autograd(_dsm_backward, setup_context=_dsm_setup)


def dsm_loss(score, sigma, *, seed=None, counter=0, noise=None, weight="sigma2",
             reduction="mean", offset=0) -> torch.Tensor:
    """Denoising score matching loss, as :func:`scorekit.dsm_loss`, differentiable in ``score``.

    The fused kernel computes the loss and ``d loss / d score`` in one pass;
    backward multiplies the saved gradient by the incoming one. The gradient
    is computed only when ``score`` requires grad (and grad mode is on).

    Returns a tensor of ``score``'s dtype: 0-d for "mean" and "sum" (summed in
    float64 in a fixed order), ``(B,)`` for "none".
    """
    score = _tensor(score, "score")
    sigma = _param(sigma, "sigma")
    if isinstance(weight, str):
        if weight not in ("sigma2", "none"):
            raise ValueError(f"weight must be 'sigma2', 'none', a number or a (B,) tensor, "
                             f"got {weight!r}")
        weight_t = None if weight == "sigma2" else torch.tensor(1.0, dtype=torch.float64)
    else:
        weight_t = _param(weight, "weight")
    reduction = choice(reduction, "reduction", _REDUCTIONS)
    if (seed is None) == (noise is None):
        raise ValueError("dsm_loss: pass exactly one of seed= and noise=")
    if noise is not None:
        noise = _tensor(noise, "noise")
        if _need_grad(noise):
            raise ValueError("noise requires grad, but scorekit.torch.dsm_loss differentiates "
                             "only with respect to score: pass noise.detach()")
        no_stream_with_noise(counter, offset)
        seed = 0
    stream = _stream(seed, counter, offset)
    loss, _ = _dsm_op(score, sigma, weight_t, noise, *stream, reduction, _need_grad(score))
    return loss


# ---------------------------------------------------------------- sliced / implicit score matching

@torch.library.custom_op("scorekit::ssm_loss", mutates_args=())
def _ssm_op(score: torch.Tensor, jvp: torch.Tensor, seed: int, counter: int, offset: int,
            kind: str, variance_reduction: bool, reduction: str,
            need_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with _losses_on(score):
        res = _api.ssm_loss(_host(score), _host(jvp), seed=_unsigned(seed), counter=counter,
                            offset=offset, kind=kind, variance_reduction=variance_reduction,
                            reduction=reduction, return_grad=need_grad)
    if not need_grad:
        return (_loss_tensor(res, score.dtype), _empty_like_grad(score, False),
                _empty_like_grad(jvp, False))
    loss, grad_score, grad_jvp = res
    return _loss_tensor(loss, score.dtype), _wrap(grad_score), _wrap(grad_jvp)


@_ssm_op.register_fake
def _(score, jvp, seed, counter, offset, kind, variance_reduction, reduction, need_grad):
    return (_loss_like(score, reduction), _empty_like_grad(score, need_grad),
            _empty_like_grad(jvp, need_grad))


def _loss_grads_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(*output[1:])
    ctx.save_for_backward(*output[1:])


def _ssm_backward(ctx, grad_loss, *_):
    grad_score, grad_jvp = ctx.saved_tensors
    return (_scaled(grad_loss, grad_score), _scaled(grad_loss, grad_jvp),
            None, None, None, None, None, None, None)


_ssm_op.register_autograd(_ssm_backward, setup_context=_loss_grads_setup)


def ssm_loss(score, jvp, *, seed, counter=0, kind="gaussian", variance_reduction=True,
             reduction="mean", offset=0) -> torch.Tensor:
    """Sliced score matching, as :func:`scorekit.ssm_loss`, differentiable in ``score`` and ``jvp``.

    ``jvp`` holds ``J v_k`` for the probes ``v_k`` of :func:`probes` with the
    same stream (``torch.func.jvp`` of the score network along them).
    """
    score = _tensor(score, "score")
    jvp = _tensor(jvp, "jvp")
    reduction = choice(reduction, "reduction", _REDUCTIONS)
    kind = choice(kind, "kind", _api.PROBE_KINDS)
    variance_reduction = flag(variance_reduction, "variance_reduction")
    return _ssm_op(score, jvp, *_stream(seed, counter, offset), kind, variance_reduction,
                   reduction, _need_grad(score, jvp))[0]


@torch.library.custom_op("scorekit::ism_loss", mutates_args=())
def _ism_op(score: torch.Tensor, jac_trace: torch.Tensor, reduction: str,
            need_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with _losses_on(score):
        res = _api.ism_loss(_host(score), _host(jac_trace), reduction=reduction,
                            return_grad=need_grad)
    if not need_grad:
        return (_loss_tensor(res, score.dtype), _empty_like_grad(score, False),
                _empty_like_grad(jac_trace, False))
    loss, grad_score, grad_trace = res
    return _loss_tensor(loss, score.dtype), _wrap(grad_score), _wrap(grad_trace)


@_ism_op.register_fake
def _(score, jac_trace, reduction, need_grad):
    return (_loss_like(score, reduction), _empty_like_grad(score, need_grad),
            _empty_like_grad(jac_trace, need_grad))


def _ism_backward(ctx, grad_loss, *_):
    grad_score, grad_trace = ctx.saved_tensors
    return _scaled(grad_loss, grad_score), _scaled(grad_loss, grad_trace), None, None


_ism_op.register_autograd(_ism_backward, setup_context=_loss_grads_setup)


def ism_loss(score, jac_trace, *, reduction="mean") -> torch.Tensor:
    """Implicit score matching ``|s|^2 / 2 + tr(J)``, as :func:`scorekit.ism_loss`.

    Differentiable in ``score`` and ``jac_trace``.
    """
    score = _tensor(score, "score")
    jac_trace = _tensor(jac_trace, "jac_trace")
    reduction = choice(reduction, "reduction", _REDUCTIONS)
    return _ism_op(score, jac_trace, reduction, _need_grad(score, jac_trace))[0]

