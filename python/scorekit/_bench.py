"""Benchmark harness for scorekit kernels against plain NumPy baselines.

Run it with ``python -m scorekit bench`` (or ``python benchmarks/run.py``).
Every kernel is timed interleaved with a NumPy implementation written the
way a NumPy user would write it, and its throughput is compared with the
memory copy bandwidth measured in the same run. When PyTorch can be
imported (it is optional, and imported only when the benchmark runs), the
noise, perturbation, DSM loss and Langevin kernels are also timed against
PyTorch eager code on CPU tensors in the same interleaved rounds.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KERNELS", "Inputs", "Kernel", "main"]

PROG = "python -m scorekit bench"

#: Seed of the noise streams (scorekit ``seed=`` and ``numpy.random.default_rng``).
NOISE_SEED = 20240917
#: Seed used to draw the benchmark inputs themselves.
INPUT_SEED = 7

DEFAULT_SIZES = (10_000, 1_000_000, 17_000_000)
QUICK_SIZES = (10_000, 1_000_000)
DTYPES = {"float32": np.float32, "float64": np.float64}

#: Bytes of the array copied to measure memory bandwidth (at least).
COPY_MIN_BYTES = 64 * 2**20
COPY_MAX_BYTES = 512 * 2**20

LANGEVIN_STEP = 1e-3

#: Row length ``D`` of the probe and sliced-score-matching layouts.
PROBE_DIM = 1000


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def batch_rows(n: int) -> int:
    """Number of rows ``B`` used when ``n`` elements are laid out as ``(B, D)``.

    Parameters
    ----------
    n : int
        Total number of elements.

    Returns
    -------
    int
        The largest divisor of `n` not above ``min(1000, round(sqrt(n)))``,
        so that 1e4 elements give ``B = 100`` and 1e6 or 1.7e7 elements
        give ``B = 1000``.
    """
    b = max(1, min(1000, round(math.sqrt(n))))
    while n % b:
        b -= 1
    return b


def probe_layout(n: int) -> tuple[int, int]:
    """Layout ``(B, D)`` of the ``probes`` and ``ssm_loss`` benchmarks.

    Parameters
    ----------
    n : int
        Total number of elements.

    Returns
    -------
    tuple of int
        ``D`` is the largest divisor of `n` not above :data:`PROBE_DIM`
        (1000 for the default sizes) and ``B = n // D``.
    """
    d = max(1, min(PROBE_DIM, n))
    while n % d:
        d -= 1
    return (n // d, d)


class Inputs:
    """Lazily created benchmark inputs for one element count and dtype.

    Parameters
    ----------
    n : int
        Total number of elements.
    dtype : numpy.dtype
        Floating point dtype of every array.

    Attributes
    ----------
    n, dtype, rows, cols : int, numpy.dtype, int, int
        Element count, dtype, and the ``(rows, cols)`` batch layout with
        ``rows * cols == n``.
    """

    def __init__(self, n: int, dtype: Any) -> None:
        self.n = int(n)
        self.dtype = np.dtype(dtype)
        self.rows = batch_rows(self.n)
        self.cols = self.n // self.rows
        self._rng = np.random.default_rng(INPUT_SEED)

    @property
    def shape(self) -> tuple[int, int]:
        """Batch shape ``(rows, cols)``."""
        return (self.rows, self.cols)

    @cached_property
    def x(self) -> np.ndarray:
        """Standard normal samples of shape :attr:`shape`."""
        return self._rng.standard_normal(self.shape, dtype=self.dtype)

    @cached_property
    def score(self) -> np.ndarray:
        """Standard normal score values of shape :attr:`shape`."""
        return self._rng.standard_normal(self.shape, dtype=self.dtype)

    @cached_property
    def sigma(self) -> np.ndarray:
        """Per-sample noise levels, geometric in ``[0.01, 0.99]``, length ``rows``."""
        return np.geomspace(0.01, 0.99, self.rows).astype(self.dtype)

    @cached_property
    def scale(self) -> np.ndarray:
        """Per-sample signal scale ``sqrt(1 - sigma**2)``, length ``rows``."""
        return np.sqrt(1 - self.sigma.astype(np.float64) ** 2).astype(self.dtype)

    @cached_property
    def z(self) -> np.ndarray:
        """Stored noise for the DSM and SSM baselines, drawn before any timing."""
        rng = np.random.default_rng(NOISE_SEED)
        return rng.standard_normal(self.shape, dtype=self.dtype)

    @cached_property
    def jvp(self) -> np.ndarray:
        """Standard normal Jacobian-vector products of shape :attr:`shape`."""
        return self._rng.standard_normal(self.shape, dtype=self.dtype)

    @property
    def probe_shape(self) -> tuple[int, int]:
        """Layout ``(B, D)`` of the probe kernels (:func:`probe_layout`)."""
        return probe_layout(self.n)

    def out(self, shape: Sequence[int] | None = None) -> np.ndarray:
        """Return a fresh, already touched output buffer.

        Parameters
        ----------
        shape : sequence of int, optional
            Buffer shape; :attr:`shape` by default.

        Returns
        -------
        numpy.ndarray
            Zero-filled array of this dtype (pages are faulted in).
        """
        return np.zeros(self.shape if shape is None else tuple(shape), dtype=self.dtype)


# --------------------------------------------------------------------------
# Kernels: scorekit callables and NumPy baselines
# --------------------------------------------------------------------------


def _sk_noise(fname: str) -> Callable[[Any, Inputs], Callable[[], Any]]:
    def factory(sk: Any, inp: Inputs) -> Callable[[], Any]:
        fn = getattr(sk, fname)
        shape = (inp.n,)
        out = inp.out(shape)
        dtype = inp.dtype.type
        counter = itertools.count()

        def call() -> Any:
            return fn(shape, seed=NOISE_SEED, counter=next(counter), dtype=dtype, out=out)

        return call

    return factory


def _np_normal(inp: Inputs) -> Callable[[], Any]:
    rng = np.random.default_rng(NOISE_SEED)
    n, dtype = inp.n, inp.dtype

    def call() -> Any:
        return rng.standard_normal(n, dtype=dtype)

    return call


def _np_uniform(inp: Inputs) -> Callable[[], Any]:
    rng = np.random.default_rng(NOISE_SEED)
    n, dtype = inp.n, inp.dtype

    def call() -> Any:
        return rng.random(n, dtype=dtype)

    return call


def _np_rademacher(inp: Inputs) -> Callable[[], Any]:
    rng = np.random.default_rng(NOISE_SEED)
    n, dtype = inp.n, inp.dtype

    def call() -> Any:
        return (rng.integers(0, 2, size=n, dtype=np.int8) * 2 - 1).astype(dtype)

    return call


def _sk_perturb(sk: Any, inp: Inputs) -> Callable[[], Any]:
    x, sigma, scale, out = inp.x, inp.sigma, inp.scale, inp.out()
    counter = itertools.count()

    def call() -> Any:
        return sk.perturb(x, sigma, seed=NOISE_SEED, counter=next(counter), scale=scale, out=out)

    return call


def _np_perturb(inp: Inputs) -> Callable[[], Any]:
    rng = np.random.default_rng(NOISE_SEED)
    x = inp.x
    sigma = inp.sigma[:, None]
    scale = inp.scale[:, None]

    def call() -> Any:
        return scale * x + sigma * rng.standard_normal(x.shape, dtype=x.dtype)

    return call


def _sk_dsm_loss(sk: Any, inp: Inputs) -> Callable[[], Any]:
    score, sigma = inp.score, inp.sigma
    counter = itertools.count()

    def call() -> Any:
        return sk.dsm_loss(score, sigma, seed=NOISE_SEED, counter=next(counter), return_grad=True)

    return call


def _np_dsm_loss(inp: Inputs) -> Callable[[], Any]:
    score, z, sigma = inp.score, inp.z, inp.sigma
    sig = sigma[:, None]
    batch = score.shape[0]

    def call() -> Any:
        residual = score + z / sig
        loss = (0.5 * sigma**2 * np.sum(residual**2, axis=1)).mean()
        grad = sig**2 * residual / batch
        return loss, grad

    return call


def _sk_langevin(sk: Any, inp: Inputs) -> Callable[[], Any]:
    x, score, out = inp.x, inp.score, inp.out()
    step = LANGEVIN_STEP
    counter = itertools.count()

    def call() -> Any:
        return sk.langevin_step(x, score, step, seed=NOISE_SEED, counter=next(counter), out=out)

    return call


def _np_langevin(inp: Inputs) -> Callable[[], Any]:
    rng = np.random.default_rng(NOISE_SEED)
    x, score = inp.x, inp.score
    step = LANGEVIN_STEP
    noise_scale = math.sqrt(2 * step)

    def call() -> Any:
        return x + step * score + noise_scale * rng.standard_normal(x.shape, dtype=x.dtype)

    return call


def _sk_probes(kind: str) -> Callable[[Any, Inputs], Callable[[], Any]]:
    def factory(sk: Any, inp: Inputs) -> Callable[[], Any]:
        shape, dtype = inp.probe_shape, inp.dtype.type
        counter = itertools.count()

        def call() -> Any:
            return sk.probes(shape, kind=kind, seed=NOISE_SEED, counter=next(counter), dtype=dtype)

        return call

    return factory


def _np_probes(kind: str) -> Callable[[Inputs], Callable[[], Any]]:
    def factory(inp: Inputs) -> Callable[[], Any]:
        rng = np.random.default_rng(NOISE_SEED)
        shape, dtype = inp.probe_shape, inp.dtype
        root_d = math.sqrt(shape[1])

        if kind == "rademacher":

            def call() -> Any:
                return (rng.integers(0, 2, size=shape, dtype=np.int8) * 2 - 1).astype(dtype)

        elif kind == "gaussian":

            def call() -> Any:
                return rng.standard_normal(shape, dtype=dtype)

        elif kind == "sphere":

            def call() -> Any:
                g = rng.standard_normal(shape, dtype=dtype)
                return g * (root_d / np.linalg.norm(g, axis=1, keepdims=True))

        else:
            raise ValueError(f"unknown probe kind {kind!r}")
        return call

    return factory


def _sk_ssm_loss(sk: Any, inp: Inputs) -> Callable[[], Any]:
    shape = inp.probe_shape
    score, jvp = inp.score.reshape(shape), inp.jvp.reshape(shape)
    counter = itertools.count()

    def call() -> Any:
        return sk.ssm_loss(
            score,
            jvp,
            seed=NOISE_SEED,
            counter=next(counter),
            kind="gaussian",
            variance_reduction=False,
            reduction="mean",
            return_grad=True,
        )

    return call


def _np_ssm_loss(inp: Inputs) -> Callable[[], Any]:
    shape = inp.probe_shape
    score, jvp, v = inp.score.reshape(shape), inp.jvp.reshape(shape), inp.z.reshape(shape)
    batch = shape[0]

    def call() -> Any:
        a = np.einsum("bd,bd->b", v, jvp)
        c = np.einsum("bd,bd->b", v, score)
        loss = np.mean(a + 0.5 * c**2)
        grad_score = (c[:, None] * v) / batch
        grad_jvp = v / batch
        return loss, grad_score, grad_jvp

    return call


def _sk_ism_loss(sk: Any, inp: Inputs) -> Callable[[], Any]:
    score = inp.score.reshape(inp.probe_shape)
    trace = np.ones(score.shape[0], dtype=inp.dtype)

    def call() -> Any:
        return sk.ism_loss(score, trace, reduction="mean", return_grad=True)

    return call


def _np_ism_loss(inp: Inputs) -> Callable[[], Any]:
    score = inp.score.reshape(inp.probe_shape)
    batch = score.shape[0]
    trace = np.ones(batch, dtype=inp.dtype)

    def call() -> Any:
        loss = np.mean(0.5 * np.einsum("bd,bd->b", score, score) + trace)
        return loss, score / batch, np.full(batch, 1 / batch, dtype=inp.dtype)

    return call


HUTCHINSON_PROBES = 4


def _sk_hutchinson(sk: Any, inp: Inputs) -> Callable[[], Any]:
    shape = inp.probe_shape
    d = inp.x.reshape(shape)[:, None, :]  # a diagonal operator per sample
    counter = itertools.count()

    def call() -> Any:
        return sk.hutchinson(lambda v: d * v, shape, num_probes=HUTCHINSON_PROBES,
                             kind="rademacher", seed=NOISE_SEED, counter=next(counter),
                             batched=True, dtype=inp.dtype)

    return call


def _np_hutchinson(inp: Inputs) -> Callable[[], Any]:
    shape = inp.probe_shape
    d = inp.x.reshape(shape)[:, None, :]
    rng = np.random.default_rng(NOISE_SEED)
    probes_shape = (shape[0], HUTCHINSON_PROBES, shape[1])

    def call() -> Any:
        v = (rng.integers(0, 2, size=probes_shape, dtype=np.int8) * 2 - 1).astype(inp.dtype)
        t = np.einsum("bkd,bkd->bk", v, d * v, dtype=np.float64)
        return t.mean(axis=1), t.std(axis=1, ddof=1) / np.sqrt(HUTCHINSON_PROBES)

    return call


# --------------------------------------------------------------------------
# PyTorch eager baselines (optional: torch is imported by main(), never by scorekit)
# --------------------------------------------------------------------------
#
# Each factory takes the torch module and the inputs, wraps the NumPy inputs
# once with the zero-copy ``torch.from_numpy`` and returns the zero-argument
# call, written the way a PyTorch user would on CPU tensors and computing what
# the matching ``_np_*`` baseline computes. Noise comes from a
# ``torch.Generator`` seeded with NOISE_SEED (the counterpart of
# ``numpy.random.default_rng(NOISE_SEED)``), so the global torch RNG is left alone.


def _load_torch() -> Any:
    """Return the ``torch`` module, or None when it cannot be imported."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch


def _torch_generator(torch: Any) -> Any:
    return torch.Generator().manual_seed(NOISE_SEED)


def _torch_fill(fname: str) -> Callable[[Any, Inputs], Callable[[], Any]]:
    """torch.randn / torch.rand into a preallocated tensor."""
    def factory(torch: Any, inp: Inputs) -> Callable[[], Any]:
        gen = _torch_generator(torch)
        n = inp.n
        out = torch.from_numpy(inp.out((n,)))
        fill = getattr(torch, fname)

        def call() -> Any:
            return fill(n, generator=gen, dtype=out.dtype, out=out)

        return call

    return factory


def _torch_rademacher(torch: Any, inp: Inputs) -> Callable[[], Any]:
    # int8 bits from torch.randint mapped to -1 / +1, then cast: _np_rademacher's formula.
    gen = _torch_generator(torch)
    n, dtype = inp.n, getattr(torch, inp.dtype.name)

    def call() -> Any:
        return (torch.randint(0, 2, (n,), generator=gen, dtype=torch.int8) * 2 - 1).to(dtype)

    return call


def _torch_perturb(torch: Any, inp: Inputs) -> Callable[[], Any]:
    gen = _torch_generator(torch)
    x = torch.from_numpy(inp.x)
    sigma = torch.from_numpy(inp.sigma)[:, None]
    scale = torch.from_numpy(inp.scale)[:, None]

    def call() -> Any:
        return scale * x + sigma * torch.randn_like(x, generator=gen)

    return call


def _torch_dsm_loss(torch: Any, inp: Inputs) -> Callable[[], Any]:
    # Stored noise and the closed-form gradient with respect to score, as in _np_dsm_loss.
    score, z, sigma = (torch.from_numpy(a) for a in (inp.score, inp.z, inp.sigma))
    sig = sigma[:, None]
    batch = score.shape[0]

    def call() -> Any:
        residual = score + z / sig
        loss = (0.5 * sigma**2 * torch.sum(residual**2, dim=1)).mean()
        grad = sig**2 * residual / batch
        return loss, grad

    return call


def _torch_langevin(torch: Any, inp: Inputs) -> Callable[[], Any]:
    gen = _torch_generator(torch)
    x, score = torch.from_numpy(inp.x), torch.from_numpy(inp.score)
    step = LANGEVIN_STEP
    noise_scale = math.sqrt(2 * step)

    def call() -> Any:
        return x + step * score + noise_scale * torch.randn_like(x, generator=gen)

    return call


@dataclass(frozen=True)
class Kernel:
    """One benchmarked operation.

    Attributes
    ----------
    name : str
        Kernel name as shown in the table and accepted by ``--kernels``.
    scorekit : callable
        ``scorekit(module, inputs) -> call``; builds a zero-argument callable
        running the scorekit kernel once.
    numpy : callable
        ``numpy(inputs) -> call``; builds the zero-argument NumPy baseline.
    bytes_moved : callable
        ``bytes_moved(n, itemsize) -> int``; bytes the kernel must read and
        write at minimum.
    uses_out : bool
        Whether the scorekit call writes into a preallocated ``out=`` buffer.
    batched : bool
        Whether the operands have the ``(rows, cols)`` batch layout of
        :class:`Inputs` (otherwise they are flat ``(n,)`` arrays).
    variant : str or None
        Variant of the kernel (e.g. the probe kind), shown after the name in
        the table; ``--kernels NAME`` selects every variant of ``NAME``.
    layout : callable or None
        ``layout(n) -> shape`` of the operands when they differ from the
        :attr:`batched` / flat layouts.
    torch : callable or None
        ``torch(torch_module, inputs) -> call``; builds the zero-argument
        PyTorch eager baseline, or None when the kernel has none.
    """

    name: str
    scorekit: Callable[[Any, Inputs], Callable[[], Any]]
    numpy: Callable[[Inputs], Callable[[], Any]]
    bytes_moved: Callable[[int, int], int]
    uses_out: bool
    batched: bool
    variant: str | None = None
    layout: Callable[[int], tuple[int, ...]] | None = None
    torch: Callable[[Any, Inputs], Callable[[], Any]] | None = None

    @property
    def label(self) -> str:
        """Name and variant as shown in the table, e.g. ``probes (sphere)``."""
        return self.name if self.variant is None else f"{self.name} ({self.variant})"

    def shape(self, inputs: Inputs) -> list[int]:
        """Operand shape for `inputs`."""
        if self.layout is not None:
            return list(self.layout(inputs.n))
        return list(inputs.shape) if self.batched else [inputs.n]


KERNELS: tuple[Kernel, ...] = (
    Kernel("normal", _sk_noise("normal"), _np_normal, lambda n, s: n * s, True, False,
           torch=_torch_fill("randn")),
    Kernel("uniform", _sk_noise("uniform"), _np_uniform, lambda n, s: n * s, True, False,
           torch=_torch_fill("rand")),
    Kernel("rademacher", _sk_noise("rademacher"), _np_rademacher, lambda n, s: n * s, True, False,
           torch=_torch_rademacher),
    Kernel("perturb", _sk_perturb, _np_perturb, lambda n, s: 2 * n * s, True, True,
           torch=_torch_perturb),
    Kernel("dsm_loss", _sk_dsm_loss, _np_dsm_loss, lambda n, s: 2 * n * s, False, True,
           torch=_torch_dsm_loss),
    Kernel("langevin_step", _sk_langevin, _np_langevin, lambda n, s: 3 * n * s, True, True,
           torch=_torch_langevin),
    *(
        Kernel("probes", _sk_probes(kind), _np_probes(kind), lambda n, s: n * s, False, True, kind, probe_layout)
        for kind in ("rademacher", "gaussian", "sphere")
    ),
    # Read score and jvp, write grad_score and grad_jvp (probes regenerated in-kernel).
    Kernel("ssm_loss", _sk_ssm_loss, _np_ssm_loss, lambda n, s: 4 * n * s, False, True, None, probe_layout),
    # Read score, write grad_score.
    Kernel("ism_loss", _sk_ism_loss, _np_ism_loss, lambda n, s: 2 * n * s, False, True, None, probe_layout),
    # Per probe: write the probes, read them and the products in the fused dot kernel
    # (the user's matvec traffic is not counted).
    Kernel("hutchinson", _sk_hutchinson, _np_hutchinson,
           lambda n, s: 3 * HUTCHINSON_PROBES * n * s, False, True, None, probe_layout),
)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingPolicy:
    """How long and how often each measurement runs.

    Attributes
    ----------
    target_s : float
        Wall time aimed at for one interleaved measurement (both sides).
    min_reps, max_reps : int
        Bounds on the number of timed repeats per side.
    """

    target_s: float
    min_reps: int
    max_reps: int


FULL_POLICY = TimingPolicy(target_s=0.3, min_reps=5, max_reps=20_000)
QUICK_POLICY = TimingPolicy(target_s=0.08, min_reps=5, max_reps=2_000)


def _once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(
    fa: Callable[[], Any], fb: Callable[[], Any], policy: TimingPolicy
) -> tuple[np.ndarray, np.ndarray]:
    """Time two callables alternately and return every sample.

    Each callable must already have been warmed up. One more call of each
    sizes the repeat count ``R`` so that the whole measurement takes about
    ``policy.target_s``; then ``R`` rounds run, each timing `fa` and `fb`
    once, with the order swapped every round.

    Parameters
    ----------
    fa, fb : callable
        Zero-argument callables to compare.
    policy : TimingPolicy
        Target duration and repeat bounds.

    Returns
    -------
    ta, tb : numpy.ndarray
        Per-call wall times in seconds, ``R`` each.
    """
    per_round = _once(fa) + _once(fb)
    reps = math.ceil(policy.target_s / max(per_round, 1e-9))
    reps = max(policy.min_reps, min(policy.max_reps, reps))
    ta = np.empty(reps)
    tb = np.empty(reps)
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(reps):
            if i & 1:
                t0 = clock()
                fb()
                t1 = clock()
                fa()
                t2 = clock()
                tb[i], ta[i] = t1 - t0, t2 - t1
            else:
                t0 = clock()
                fa()
                t1 = clock()
                fb()
                t2 = clock()
                ta[i], tb[i] = t1 - t0, t2 - t1
    finally:
        if gc_was_enabled:
            gc.enable()
    return ta, tb


def time_interleaved_many(
    fns: Sequence[Callable[[], Any]], policy: TimingPolicy
) -> list[np.ndarray]:
    """Time any number of callables in turn and return every sample.

    The generalisation of :func:`time_interleaved` used when a third
    (PyTorch) baseline joins: one more call of each sizes the repeat count
    ``R`` so that the whole measurement takes about ``policy.target_s``;
    then ``R`` rounds run, each timing every callable once. Round ``i``
    starts with callable ``i % k`` and goes on cyclically, so each callable
    takes each position in the round equally often.

    Parameters
    ----------
    fns : sequence of callable
        Zero-argument callables to compare, each already warmed up.
    policy : TimingPolicy
        Target duration and repeat bounds.

    Returns
    -------
    list of numpy.ndarray
        Per-call wall times in seconds, ``R`` for each callable, in the
        order of `fns`.
    """
    k = len(fns)
    per_round = sum(_once(f) for f in fns)
    reps = math.ceil(policy.target_s / max(per_round, 1e-9))
    reps = max(policy.min_reps, min(policy.max_reps, reps))
    samples = np.empty((k, reps))
    orders = [[(start + j) % k for j in range(k)] for start in range(k)]
    calls = [[fns[j] for j in order] for order in orders]
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(reps):
            stamps = [clock()]
            for f in calls[i % k]:
                f()
                stamps.append(clock())
            for pos, j in enumerate(orders[i % k]):
                samples[j, i] = stamps[pos + 1] - stamps[pos]
    finally:
        if gc_was_enabled:
            gc.enable()
    return list(samples)


def copy_bandwidth(nbytes: int, policy: TimingPolicy) -> dict[str, float]:
    """Measure memory copy bandwidth with ``np.copyto`` on float32 arrays.

    Parameters
    ----------
    nbytes : int
        Size of the source array in bytes.
    policy : TimingPolicy
        Target duration and repeat bounds.

    Returns
    -------
    dict
        ``bytes`` (array size), ``median_s`` (median copy time) and
        ``bytes_per_s``, counting ``2 * nbytes`` moved per copy (read and
        write).
    """
    n = max(1, nbytes // 4)
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)
    np.copyto(dst, src)
    first = _once(lambda: np.copyto(dst, src))
    reps = max(2 * policy.min_reps, min(policy.max_reps, math.ceil(policy.target_s / max(first, 1e-9))))
    samples = np.empty(reps)
    clock = time.perf_counter
    for i in range(reps):
        t0 = clock()
        np.copyto(dst, src)
        samples[i] = clock() - t0
    med = float(np.median(samples))
    return {"bytes": float(src.nbytes), "median_s": med, "bytes_per_s": 2.0 * src.nbytes / med}


def _check_finite(name: str, result: Any) -> None:
    parts = result if isinstance(result, (tuple, list)) else (result,)
    for part in parts:
        if part is None:
            continue
        if not np.all(np.isfinite(np.asarray(part))):
            raise RuntimeError(f"scorekit.{name} returned non-finite values for finite inputs")


# --------------------------------------------------------------------------
# Machine information
# --------------------------------------------------------------------------


def cpu_model() -> str:
    """Return the CPU model name.

    Returns
    -------
    str
        From ``/proc/cpuinfo`` when present, else ``platform.processor()``
        or ``platform.machine()``.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            fields: dict[str, str] = {}
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip().lower(), value.strip())
        for key in ("model name", "cpu model", "model", "hardware", "cpu"):
            if fields.get(key):
                return fields[key]
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def available_cpus() -> int:
    """Return the number of CPUs this process may run on (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _build_info_summary(info: Any) -> str:
    if not isinstance(info, dict):
        return str(info)
    return ", ".join(f"{k}={v}" for k, v in info.items() if k != "version")


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def _fmt_count(n: int) -> str:
    s = f"{n:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s if float(s) == n else f"{n:,}"


def _fmt_time(t: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _fmt_rate(r: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.3g} {unit}/s"
    return f"{r:.3g} /s"


COLUMNS = (
    "kernel",
    "dtype",
    "N",
    "threads",
    "scorekit median",
    "scorekit elem/s",
    "NumPy elem/s",
    "speed-up",
    "vs torch",
    "% copy BW",
)


def _row_cells(row: dict[str, Any]) -> list[str]:
    variant = row.get("variant")
    return [
        row["kernel"] if variant is None else f"{row['kernel']} ({variant})",
        row["dtype"],
        _fmt_count(row["n"]),
        str(row["threads"]),
        _fmt_time(row["scorekit_median_s"]),
        _fmt_rate(row["scorekit_elems_per_s"]),
        _fmt_rate(row["numpy_elems_per_s"]),
        f"{row['speedup']:.2f}x",
        "-" if row.get("speedup_torch") is None else f"{row['speedup_torch']:.2f}x",
        f"{100 * row['copy_bw_fraction']:.0f}%",
    ]


def _header_lines(machine: dict[str, Any]) -> list[tuple[str, str]]:
    bw = machine["copy_bandwidth"]
    lines = [
        ("scorekit", f"{machine['scorekit_version']} ({_build_info_summary(machine['build_info'])})"),
        ("numpy", machine["numpy_version"]),
    ]
    if machine.get("torch_version") is not None:
        setting = (
            f"eager, CPU tensors; torch.set_num_threads to each row's thread count, "
            f"{machine['torch_default_threads']} by default"
        )
        lines.append(("torch", f"{machine['torch_version']} ({setting})"))
    lines += [
        ("python", machine["python_version"]),
        ("CPU", machine["cpu_model"]),
        ("nproc", str(machine["nproc"])),
        (
            "copy bandwidth",
            (
                f"{bw['bytes_per_s'] / 1e9:.2f} GB/s (np.copyto, {bw['bytes'] / 2**20:.0f} MiB "
                "float32, read + write, one thread)"
            ),
        ),
        ("scorekit threads", f"{machine['default_threads']} by default"),
    ]
    return lines


def _footer_lines(rows: list[dict[str, Any]]) -> list[str]:
    with_out = sorted({r["kernel"] for r in rows if r["out_preallocated"]}, key=_kernel_order)
    without = sorted({r["kernel"] for r in rows if not r["out_preallocated"]}, key=_kernel_order)
    with_torch = any(r.get("speedup_torch") is not None for r in rows)
    sides = "scorekit, NumPy and PyTorch" if with_torch else "scorekit and NumPy"
    lines = [
        f"Times are medians over interleaved repeats ({sides} alternate).",
        (
            "speed-up = NumPy median / scorekit median; "
            "% copy BW = (bytes that must move / scorekit median) / copy bandwidth."
        ),
    ]
    if with_torch:
        lines.append(
            "vs torch = PyTorch eager median / scorekit median, same thread count "
            "(- where not timed); torch.Generator noise, randn/rand into a preallocated "
            "out= tensor, rademacher as (randint(0, 2, int8) * 2 - 1).to(dtype), "
            "dsm_loss reads the stored noise as NumPy does."
        )
    if with_out:
        lines.append("scorekit writes into a preallocated out= buffer: " + ", ".join(with_out) + ".")
    if without:
        lines.append("scorekit allocates its result: " + ", ".join(without) + ".")
    return lines


def format_text(machine: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Render machine info and rows as a plain-text table.

    Parameters
    ----------
    machine : dict
        Machine information as collected by :func:`run`.
    rows : list of dict
        Result rows as produced by :func:`run`.

    Returns
    -------
    str
        The report, ending with a newline.
    """
    out = [f"{key}: {value}" for key, value in _header_lines(machine)]
    out.append("")
    cells = [list(COLUMNS)] + [_row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    left = {0, 1}

    def fmt(line: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

    out.append(fmt(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(fmt(c) for c in cells[1:])
    out.append("")
    out.extend(_footer_lines(rows))
    return "\n".join(out) + "\n"


def format_markdown(machine: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Render machine info and rows as Markdown.

    Parameters
    ----------
    machine : dict
        Machine information as collected by :func:`run`.
    rows : list of dict
        Result rows as produced by :func:`run`.

    Returns
    -------
    str
        A bullet list of machine facts followed by a Markdown table.
    """
    out = [f"- **{key}**: {value}" for key, value in _header_lines(machine)]
    out.append("")
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join(":---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|")
    for r in rows:
        out.append("| " + " | ".join(_row_cells(r)) + " |")
    out.append("")
    out.extend(_footer_lines(rows))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------


class Progress:
    """Single-line text progress bar redrawn in place on a stream.

    Parameters
    ----------
    total : int
        Number of steps.
    enabled : bool
        Draw nothing when false.
    stream : file object, optional
        Where to draw; ``sys.stderr`` by default.
    """

    def __init__(self, total: int, enabled: bool, stream: Any = None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self._width = 0

    def show(self, label: str) -> None:
        """Redraw the bar with `label` describing the current step."""
        if not self.enabled:
            return
        frac = self.done / self.total
        filled = round(24 * frac)
        line = f"[{'#' * filled}{'.' * (24 - filled)}] {self.done}/{self.total} {label}"
        line = line[:100]
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()

    def advance(self) -> None:
        """Count one finished step."""
        self.done += 1

    def close(self) -> None:
        """Erase the bar."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def _kernel_order(name: str) -> int:
    names = [k.name for k in KERNELS]
    return names.index(name) if name in names else len(names)


def _load_scorekit() -> Any:
    import scorekit

    return scorekit


@contextmanager
def _torch_threads(torch: Any, nthreads: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(nthreads)``, restoring it afterwards."""
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(nthreads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def plan(
    sizes: Sequence[int],
    dtypes: Sequence[str],
    kernels: Sequence[Kernel],
    threads: Sequence[int | None] | None,
    default_threads: int,
) -> list[tuple[str, int, Kernel, int]]:
    """List the measurements to make.

    Parameters
    ----------
    sizes : sequence of int
        Element counts.
    dtypes : sequence of str
        ``"float32"`` and/or ``"float64"``.
    kernels : sequence of Kernel
        Kernels to run.
    threads : sequence of int or None, or None
        Thread counts for every size (``None`` entries mean the scorekit
        default). When `threads` itself is None, every size runs with the
        default and the largest size additionally with one thread.
    default_threads : int
        ``scorekit.get_num_threads()`` before the run.

    Returns
    -------
    list of tuple
        ``(dtype, n, kernel, threads)`` in execution order.
    """
    largest = max(sizes)
    jobs = []
    for dtype in dtypes:
        for n in sizes:
            if threads is None:
                wanted: list[int | None] = [None] + ([1] if n == largest else [])
            else:
                wanted = list(threads)
            counts: list[int] = []
            for t in wanted:
                t = default_threads if t is None else t
                if t not in counts:
                    counts.append(t)
            for kernel in kernels:
                for t in counts:
                    jobs.append((dtype, n, kernel, t))
    return jobs


def run(
    sk: Any,
    sizes: Sequence[int],
    dtypes: Sequence[str],
    kernels: Sequence[Kernel],
    threads: Sequence[int | None] | None,
    policy: TimingPolicy,
    progress: bool = False,
    torch: Any = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the benchmark.

    Parameters
    ----------
    sk : module
        The scorekit module (or any object with the same API).
    sizes, dtypes, kernels, threads
        See :func:`plan`.
    policy : TimingPolicy
        Target duration and repeat bounds of each measurement.
    progress : bool, default False
        Draw a progress bar on stderr.
    torch : module, optional
        The ``torch`` module; when given, kernels with a PyTorch baseline
        also time it, interleaved with the other two, with
        ``torch.set_num_threads`` set to the row's thread count.

    Returns
    -------
    machine : dict
        Versions, build info, CPU, ``nproc``, default thread counts and copy
        bandwidth (``torch_version`` and ``torch_default_threads`` are None
        without `torch`).
    rows : list of dict
        One entry per measurement with the raw medians, rates, speed-ups and
        fraction of copy bandwidth; ``torch_median`` (s), ``torch_rate``
        (elements/s) and ``speedup_torch`` (PyTorch median / scorekit median)
        are None when PyTorch was not timed.
    """
    default_threads = int(sk.get_num_threads())
    jobs = plan(sizes, dtypes, kernels, threads, default_threads)
    largest_bytes = max(n * np.dtype(DTYPES[d]).itemsize for d in dtypes for n in sizes)
    copy_bytes = min(COPY_MAX_BYTES, max(COPY_MIN_BYTES, largest_bytes))

    bar = Progress(len(jobs) + 1, progress)
    rows: list[dict[str, Any]] = []
    try:
        bar.show(f"copy bandwidth ({copy_bytes / 2**20:.0f} MiB)")
        bw = copy_bandwidth(copy_bytes, policy)
        bar.advance()
        machine = {
            "scorekit_version": str(getattr(sk, "__version__", "unknown")),
            "build_info": sk.build_info(),
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "cpu_model": cpu_model(),
            "nproc": available_cpus(),
            "cpu_count": os.cpu_count(),
            "default_threads": default_threads,
            "torch_version": None if torch is None else str(torch.__version__),
            "torch_default_threads": None if torch is None else int(torch.get_num_threads()),
            "copy_bandwidth": bw,
            "timing": {"target_s": policy.target_s, "min_reps": policy.min_reps, "max_reps": policy.max_reps},
        }
        current: tuple[str, int] | None = None
        inputs: Inputs | None = None
        for dtype_name, n, kernel, nthreads in jobs:
            if current != (dtype_name, n):
                inputs = None
                gc.collect()
                inputs = Inputs(n, DTYPES[dtype_name])
                current = (dtype_name, n)
            assert inputs is not None
            bar.show(f"{kernel.label} {dtype_name} N={_fmt_count(n)} threads={nthreads}")
            sk.set_num_threads(nthreads)
            f_sk = kernel.scorekit(sk, inputs)
            f_np = kernel.numpy(inputs)
            _check_finite(kernel.name, f_sk())
            f_np()
            t_torch: np.ndarray | None = None
            if torch is None or kernel.torch is None:
                t_sk, t_np = time_interleaved(f_sk, f_np, policy)
            else:
                with _torch_threads(torch, nthreads):
                    f_torch = kernel.torch(torch, inputs)
                    f_torch()
                    t_sk, t_np, t_torch = time_interleaved_many([f_sk, f_np, f_torch], policy)
                f_torch = None
            f_sk = f_np = None
            med_sk = float(np.median(t_sk))
            med_np = float(np.median(t_np))
            med_torch = None if t_torch is None else float(np.median(t_torch))
            nbytes = kernel.bytes_moved(inputs.n, inputs.dtype.itemsize)
            row: dict[str, Any] = {"kernel": kernel.name}
            if kernel.variant is not None:
                row["variant"] = kernel.variant
            rows.append(
                {
                    **row,
                    "dtype": dtype_name,
                    "n": inputs.n,
                    "shape": kernel.shape(inputs),
                    "threads": int(sk.get_num_threads()),
                    "reps": int(t_sk.size),
                    "scorekit_median_s": med_sk,
                    "scorekit_min_s": float(t_sk.min()),
                    "numpy_median_s": med_np,
                    "numpy_min_s": float(t_np.min()),
                    "scorekit_elems_per_s": inputs.n / med_sk,
                    "numpy_elems_per_s": inputs.n / med_np,
                    "speedup": med_np / med_sk,
                    "torch_median": med_torch,
                    "torch_rate": None if med_torch is None else inputs.n / med_torch,
                    "speedup_torch": None if med_torch is None else med_torch / med_sk,
                    "bytes_moved": nbytes,
                    "scorekit_bytes_per_s": nbytes / med_sk,
                    "copy_bw_fraction": nbytes / med_sk / bw["bytes_per_s"],
                    "out_preallocated": kernel.uses_out,
                }
            )
            bar.advance()
    finally:
        sk.set_num_threads(default_threads)
        bar.close()
    return machine, rows


def _positive_int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(value)


def _comma_list(parse: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parser(text: str) -> list[Any]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return [parse(t) for t in items]

    return parser


def _thread_count(text: str) -> int | None:
    if text.lower() in ("all", "default", "0"):
        return None
    return _positive_int(text)


def _kernel_name(text: str) -> str:
    names = list(dict.fromkeys(k.name for k in KERNELS))
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown kernel {text!r} (choose from {', '.join(names)})")
    return text


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser of the benchmark."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Time scorekit kernels against NumPy baselines (and PyTorch eager ones when "
        "torch can be imported) and the machine's copy bandwidth.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="sizes 1e4 and 1e6, float32 only, shorter measurements",
    )
    p.add_argument("--json", metavar="PATH", help="also write machine info and all rows as JSON to PATH")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--sizes",
        type=_comma_list(_positive_int),
        metavar="N[,N...]",
        help="element counts, e.g. 1e4,1e6,1.7e7 (default: 1e4,1e6,1.7e7; quick: 1e4,1e6)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64", "both"),
        help="element types (default: both; quick: float32)",
    )
    p.add_argument(
        "--threads",
        type=_comma_list(_thread_count),
        metavar="T[,T...]",
        help="scorekit thread counts for every size, 'all' meaning the default "
        "(default: all threads everywhere, plus 1 thread at the largest size)",
    )
    p.add_argument(
        "--kernels",
        type=_comma_list(_kernel_name),
        metavar="K[,K...]",
        help="only these kernels (" + ", ".join(dict.fromkeys(k.name for k in KERNELS)) + ")",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: only when stderr is a terminal)",
    )
    p.add_argument(
        "--no-torch",
        action="store_true",
        help="skip the PyTorch eager baselines (timed by default when torch can be imported)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json:  # checked before the run, which takes minutes
        target = Path(args.json)
        if target.is_dir():
            parser.error(f"--json: {args.json!r} is a directory")
        if not target.parent.is_dir():
            parser.error(f"--json: no directory {str(target.parent)!r}")
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sizes = sorted(set(sizes))
    dtype_opt = args.dtype or ("float32" if args.quick else "both")
    dtypes = ["float32", "float64"] if dtype_opt == "both" else [dtype_opt]
    wanted = args.kernels
    kernels = [k for k in KERNELS if wanted is None or k.name in wanted]
    policy = QUICK_POLICY if args.quick else FULL_POLICY
    if args.progress == "auto":
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    else:
        progress = args.progress == "always"

    try:
        sk = _load_scorekit()
    except ImportError as exc:
        print(f"{PROG}: cannot import scorekit: {exc}", file=sys.stderr)
        return 1

    torch = None if args.no_torch else _load_torch()
    machine, rows = run(
        sk, sizes, dtypes, kernels, args.threads, policy, progress=progress, torch=torch
    )
    report = format_markdown(machine, rows) if args.markdown else format_text(machine, rows)
    sys.stdout.write(report)
    sys.stdout.flush()
    if args.json:
        payload = {
            "machine": machine,
            "config": {
                "quick": bool(args.quick),
                "sizes": sizes,
                "dtypes": dtypes,
                "kernels": list(dict.fromkeys(k.name for k in kernels)),
                "threads": args.threads,
                "torch": torch is not None,
            },
            "rows": rows,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, default=str)
            fh.write("\n")
    return 0
