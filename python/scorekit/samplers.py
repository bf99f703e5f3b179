"""Sampling drivers: annealed Langevin, predictor-corrector, MALA, the probability-flow
ODE and its log-likelihood.

Each driver calls a user's score function on the whole batch and runs the fused
steps of :mod:`scorekit.steps`. Noise is reproducible from ``seed`` whatever the
batch size: sample ``b`` (global index ``offset + b``) gets the noise of stream
row ``offset + b`` at each step's counter, so a batch run whole or in shards
(with their offsets) gives the same samples (the ODE drivers, whose adaptive
solver steps over the whole batch, agree to the solver's tolerance).
``annealed_langevin``, ``pc_sample`` and ``mala`` call ``callback(i, x)`` after
every step with a read-only view of the live state (copy it to keep it) and
show a tqdm bar with ``progress`` (default: on for long runs when stderr is a
terminal).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import NamedTuple

import numpy as np

from . import _core, _gpu
from ._validate import (batch_array, count, dtype_arg, flag, nonnegative_float, real_values,
                        sample_offset, shape_arg, stream, uint64)
from .divergence import divergence
from .noise import normal
from .sde import SDE
from .steps import (corrector_alpha, corrector_step, mala_accept, mala_propose,
                    noisy_affine_step, predictor_coeffs)


def _bar(total, progress, desc):
    if progress is None:
        progress = total >= 200 and sys.stderr.isatty()
    if not flag(progress, "progress"):
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False)


class _Steps:
    """Progress bar and callback bookkeeping of one driver run."""

    def __init__(self, total, progress, callback, desc):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.bar = _bar(total, progress, desc)
        self.callback = callback

    def done(self, i, x, arrays):
        if self.callback is not None:
            self.callback(i, arrays.live(x))
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _HostArrays:
    """The few array operations of the drivers, on NumPy arrays (the CUDA version is
    scorekit._gpu.DriverArrays: a driver whose samples are on a GPU stays there)."""

    def __init__(self, x: np.ndarray):
        self.x = x

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    @classmethod
    def of(cls, x, name: str = "x") -> _HostArrays:
        return cls(batch_array(x, name))

    @classmethod
    def empty(cls, shape: tuple, dtype) -> _HostArrays:
        return cls(np.empty(shape, dtype=dtype))

    def start(self):
        return self.x.copy()

    def vector(self, value: float):
        return np.full(self.x.shape[0], value)

    def score(self, s, name: str = "score_fn"):
        if isinstance(s, np.ma.MaskedArray):
            raise TypeError(f"{name} returned a masked array")
        s = np.asarray(s)
        if s.shape != self.x.shape:
            raise ValueError(f"{name} returned shape {s.shape}, expected {self.x.shape}")
        if s.dtype.kind != "f":
            raise TypeError(f"{name} must return a float array, got dtype {s.dtype}")
        return np.ascontiguousarray(s, dtype=self.x.dtype)

    def logp(self, lp, name: str = "log_prob_fn"):
        lp = real_values(lp, name, returned=True)
        if lp.shape != (self.x.shape[0],):
            raise ValueError(f"{name} returned shape {lp.shape}, expected ({self.x.shape[0]},)")
        return np.ascontiguousarray(lp, dtype=np.float64)

    @staticmethod
    def live(x):
        view = x.view()
        view.flags.writeable = False  # the live state: copy it to keep it
        return view

    def scaled(self, x, factor: float):
        return x * x.dtype.type(factor)

    def add_scaled(self, x, factor: float, s):
        return x + x.dtype.type(factor) * s

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def divide(x, n: int):
        return x / n


def _arrays(x, name: str = "x"):
    """The array operations for the samples ``x``: on its GPU, or NumPy."""
    if type(x) is not np.ndarray and _gpu.on_cuda(x, name):
        return _gpu.DriverArrays.of(x, name)
    return _HostArrays.of(x, name)


def _score(score_fn, x, level):
    return _HostArrays(x).score(score_fn(x, level))


def annealed_langevin(score_fn, x, sigmas, *, n_steps_each, step_lr, seed, offset=0,
                      denoise=True, callback=None, progress=None):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each noise level ``sigma_i`` (non-increasing), ``n_steps_each`` steps
    ``x + a_i s(x, sigma_i) + sqrt(2 a_i) z`` with ``a_i = step_lr *
    (sigma_i / sigma_L)**2`` (the NCSN code's ``step_lr``; the paper's
    Algorithm 1 writes the step as ``alpha_i / 2`` with ``alpha_i = epsilon
    sigma_i**2 / sigma_L**2``, so ``epsilon = 2 step_lr``); ``denoise`` ends with the Tweedie step
    ``x + sigma_L**2 s(x, sigma_L)``. Step ``k`` (0-based over all levels)
    uses counter ``k``.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, sigma)`` with ``sigma`` a float64 (B,) array of the
        current level; returns the score, x's shape.
    x : array_like (B, ...), float32 or float64
        Initial samples (not modified).
    sigmas : array_like
        Noise levels, > 0.
    n_steps_each : int
    step_lr : float
        > 0 (see above).

    Returns
    -------
    numpy.ndarray
        The samples (x's dtype). A PyTorch CUDA tensor or CuPy array ``x`` keeps
        the whole run on its GPU: ``score_fn`` then receives and returns arrays of
        that framework on that device (``sigma`` too: a float64 (B,) array), and
        the samples are one.
    """
    arrays = _arrays(x)
    x = arrays.start()
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if sigmas.size == 0 or not np.all(np.isfinite(sigmas)) or not np.all(sigmas > 0):
        raise ValueError("sigmas must be a non-empty sequence of finite values > 0")
    if np.any(np.diff(sigmas) > 0):
        raise ValueError("sigmas must be non-increasing (from the largest noise level down)")
    n = count(n_steps_each, "n_steps_each")
    lr = nonnegative_float(step_lr, "step_lr")
    if lr == 0:
        raise ValueError("step_lr must be > 0")
    with np.errstate(over="ignore"):  # the largest step as the loop forms it (inf if it overflows)
        first = float(lr * (sigmas[0] / sigmas[-1]) ** 2)
    # the step is cast to x's dtype, its noise scale sqrt(2 a) taken in float64
    if not (first <= float(np.finfo(arrays.dtype).max) and 2 * first < math.inf):
        raise ValueError(f"step_lr * (sigmas[0] / sigmas[-1])**2 = {first:g}, the first level's "
                         f"step, is too large for {arrays.dtype}: use a smaller step_lr or a "
                         "narrower range of sigmas")
    seed, _ = stream(seed, 0)
    B = x.shape[0]
    offset = sample_offset(offset, B, _row_size(x))
    denoise = flag(denoise, "denoise")
    steps = _Steps(len(sigmas) * n, progress, callback, "annealed Langevin")
    try:
        k = 0
        for sigma in sigmas:
            a = lr * (sigma / sigmas[-1]) ** 2
            level = arrays.vector(sigma)
            for _ in range(n):
                s = arrays.score(score_fn(x, level))
                noisy_affine_step(x, s, 1.0, a, math.sqrt(2 * a), seed=seed, counter=k,
                                  offset=offset, out=x)
                steps.done(k, x, arrays)
                k += 1
    finally:
        steps.close()
    if denoise:  # Tweedie: x + sigma_L^2 s(x, sigma_L), in x's dtype
        s = arrays.score(score_fn(x, arrays.vector(sigmas[-1])))
        x = arrays.add_scaled(x, sigmas[-1] ** 2, s)
    return x


def _row_size(x) -> int:
    """Elements per sample of a (B, ...) array."""
    return math.prod(tuple(x.shape)[1:]) if x.shape[0] else 0


def pc_sample(score_fn, sde, shape, *, predictor="reverse_diffusion", corrector="langevin",
              snr=0.16, n_corrector_steps=1, seed, offset=0, eps=None, denoise=True,
              probability_flow=False, per_sample_snr=False, dtype=np.float32, callback=None,
              progress=None, like=None):
    """Predictor-corrector sampling of a score SDE (Song et al. 2021, Algorithm 1).

    ``x`` starts from the prior; at each of the ``N`` times ``t_i`` (from T
    down to ``eps``) ``n_corrector_steps`` Langevin corrector steps, then one
    predictor step. Counters: 0 for the prior; step i uses
    ``1 + i (n_corrector_steps + 1) + j`` for corrector j and
    ``1 + i (n_corrector_steps + 1) + n_corrector_steps`` for the predictor.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, t)`` with ``t`` a float64 (B,) array.
    sde : VESDE, VPSDE or subVPSDE
    shape : tuple
        ``(B, ...)`` of the batch.
    predictor : {"reverse_diffusion", "euler_maruyama", "ancestral", None}
    corrector : {"langevin", None}
    snr : float
        Corrector signal-to-noise ratio.
    eps : float, optional
        Last time (default ``sde.sampling_eps``).
    denoise : bool
        Return the last step's mean (no final noise).
    per_sample_snr : bool
        Corrector step sizes from each sample's norms instead of batch means
        (the score-SDE code's choice, the default). Batch means make every
        sample's step depend on the whole batch; per-sample sizes keep a
        batch run in shards identical to the whole.
    like : array, optional
        A PyTorch CUDA tensor or CuPy array: the run happens on its GPU (the
        samples are created there, ``score_fn`` receives and returns arrays of
        that framework on that device, ``t`` too) with the CPU's bits.

    Returns
    -------
    numpy.ndarray
        The samples (an array of ``like``'s framework and device with ``like``).
    """
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a scorekit SDE, got {type(sde).__name__}")
    if predictor is None and corrector is None:
        raise ValueError("pass a predictor, a corrector or both")
    if corrector not in (None, "langevin"):
        raise ValueError(f"corrector must be 'langevin' or None, got {corrector!r}")
    nc = count(n_corrector_steps, "n_corrector_steps", 0) if corrector else 0
    seed, _ = stream(seed, 0)
    eps = _eps(sde, eps)
    denoise = flag(denoise, "denoise")
    x, arrays = _prior(sde, shape, seed, offset, dtype, like)
    B = x.shape[0]
    times = np.linspace(sde.T, eps, sde.N)
    steps = _Steps(sde.N, progress, callback, "PC sampler")
    x_mean = x
    try:
        for i, t in enumerate(times):
            host_t = np.full(B, t)
            vec_t = arrays.vector(t)
            base = 1 + i * (nc + 1)
            for j in range(nc):
                s = arrays.score(score_fn(x, vec_t))
                x, x_mean, _ = corrector_step(x, s, snr=snr, alpha=corrector_alpha(sde, host_t),
                                              seed=seed, counter=base + j, offset=offset,
                                              per_sample=per_sample_snr, out=x)
            if predictor is not None:
                s = arrays.score(score_fn(x, vec_t))
                a, c, g = predictor_coeffs(sde, host_t, predictor, probability_flow)
                x, x_mean = noisy_affine_step(x, s, a, c, g, seed=seed, counter=base + nc,
                                              offset=offset, out=x)
            steps.done(i, x, arrays)
    finally:
        steps.close()
    return arrays.copy(x_mean) if denoise else x


class MalaResult(NamedTuple):
    x: np.ndarray
    acceptance_rate: np.ndarray  # per chain, float64 (B,)


def mala(log_prob_fn, score_fn, x, step_size, *, n_steps, seed, offset=0, callback=None,
         progress=None):
    """Metropolis-adjusted Langevin chains, one per sample.

    Step k proposes ``x + h s(x) + sqrt(2 h) z`` (counter k) and accepts with
    the Metropolis-Hastings ratio in a fused kernel (NaN rejects); the chain's
    log-density and score are carried, so each step costs one evaluation of
    each at the proposal.

    Parameters
    ----------
    log_prob_fn, score_fn : callable
        ``(B, ...) -> (B,)`` log-density (up to a constant) and its gradient.
    x : array_like (B, ...)
    step_size : float or (B,) array
        ``h`` per chain, > 0.
    n_steps : int

    Returns
    -------
    MalaResult
        Final samples and each chain's acceptance rate. A PyTorch CUDA tensor
        or CuPy array ``x`` keeps the chains on its GPU: the functions then
        receive and return arrays of that framework on that device (the
        log-densities may also be host arrays), and the results are such arrays.
    """
    arrays = _arrays(x)
    x = arrays.start()
    n = count(n_steps, "n_steps", 0)
    seed, _ = stream(seed, 0)
    B = x.shape[0]
    offset = sample_offset(offset, B, _row_size(x))
    lp = arrays.logp(log_prob_fn(x))
    s = arrays.score(score_fn(x))
    accepted = arrays.vector(0.0)
    steps = _Steps(n, progress, callback, "MALA")
    try:
        for k in range(n):
            prop = mala_propose(x, s, step_size, seed=seed, counter=k, offset=offset)
            state = mala_accept(x, s, lp, prop, arrays.score(score_fn(prop)),
                                arrays.logp(log_prob_fn(prop)), step_size, seed=seed, counter=k,
                                offset=offset)
            x, s, lp = state.x, state.score, state.logp
            accepted += state.accepted
            steps.done(k, x, arrays)
    finally:
        steps.close()
    return MalaResult(x, arrays.divide(accepted, n) if n else arrays.vector(np.nan))


def _finite_result(values: np.ndarray, name: str) -> np.ndarray:
    """A user function's result inside an ODE solve, which must be finite (a NaN would
    otherwise make the solver's next time NaN, and the error would blame the time)."""
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values.reshape(values.shape[0], -1)))[0, 0]
        raise ValueError(f"{name} returned non-finite values (sample {bad}) during the ODE "
                         "solve")
    return values


def _tolerance(value, name: str):
    """A solver tolerance as SciPy's solve_ivp takes it (a number, or per component an
    array), real, finite and >= 0: an infinite or NaN one would end the solve with
    any answer."""
    arr = real_values(value, name)  # (bools and strings refused by their dtype)
    if not (np.isfinite(arr).all() and (arr >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value if isinstance(value, numbers.Real) else arr


def _ode_drift(sde, score_fn, x, t):
    """Probability-flow drift f(x, t) - g(t)**2 s(x, t) / 2 at one time t."""
    B = x.shape[0]
    vec_t = np.full(B, t)
    s = _finite_result(_score(score_fn, x, vec_t), "score_fn")
    f = sde.drift_coeff(t)
    g2 = sde.diffusion(t) ** 2
    return f * x - 0.5 * g2 * s


class OdeResult(NamedTuple):
    x: np.ndarray
    nfe: int  # score evaluations


def ode_sample(score_fn, sde, shape, *, seed, offset=0, eps=None, rtol=1e-5, atol=1e-5,
               method="RK45", dtype=np.float32):
    """Samples by integrating the probability-flow ODE from T to ``eps`` (SciPy solve_ivp).

    The prior draw uses counter 0 and rows ``offset + b``; the integration
    is deterministic.
    """
    from scipy.integrate import solve_ivp
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a scorekit SDE, got {type(sde).__name__}")
    eps = _eps(sde, eps)
    rtol, atol = _tolerance(rtol, "rtol"), _tolerance(atol, "atol")
    x0, _ = _prior(sde, shape, seed, offset, dtype)
    nfe = [0]

    def rhs(t, y):
        nfe[0] += 1
        x = y.reshape(x0.shape).astype(x0.dtype)
        return _ode_drift(sde, score_fn, x, t).reshape(-1).astype(np.float64)

    sol = solve_ivp(rhs, (sde.T, eps), x0.reshape(-1).astype(np.float64), rtol=rtol, atol=atol,
                    method=method)
    if not sol.success:
        raise RuntimeError(f"the ODE solver failed: {sol.message}")
    return OdeResult(sol.y[:, -1].reshape(x0.shape).astype(x0.dtype), nfe[0])


class LikelihoodResult(NamedTuple):
    log_prob: np.ndarray       # float64 (B,): log p_0(x) of each sample
    bits_per_dim: np.ndarray   # -log_prob / (D ln 2)
    prior: np.ndarray          # z = x(T)
    nfe: int


def log_likelihood(score_fn, sde, x, *, seed=None, counter=0, offset=0, divergence_fn=None,
                   num_probes=1, kind="rademacher", eps=None, rtol=1e-5, atol=1e-5,
                   method="RK45"):
    """Log-likelihood of x under the probability-flow ODE (Song et al. 2021, Appendix D.2).

    Integrates ``d[x, logp]/dt = [v(x, t), -div v(x, t)]`` from ``eps`` to T
    with ``v = f - g^2 s / 2``, then adds the prior's log-density:
    ``log p_eps(x) = log p_T(x(T)) + int div v dt``. The divergence is
    ``divergence_fn(x, t)`` when given (e.g. an exact one), else Hutchinson's
    estimate by :func:`scorekit.divergence` with probes regenerated from
    ``(seed, counter)`` and the rows ``offset + b``: the same probes along the
    whole solve, as the estimator requires.

    Returns
    -------
    LikelihoodResult
    """
    from scipy.integrate import solve_ivp
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a scorekit SDE, got {type(sde).__name__}")
    x = batch_array(x, "x")
    B, D = x.shape[0], math.prod(x.shape[1:])
    eps = _eps(sde, eps)
    rtol, atol = _tolerance(rtol, "rtol"), _tolerance(atol, "atol")
    if divergence_fn is None:
        if seed is None:
            raise ValueError("pass seed= for the Hutchinson divergence, or divergence_fn=")
        seed, counter = stream(seed, counter)
        offset = uint64(offset, "offset")
    if B == 0:
        empty = np.zeros(0)
        return LikelihoodResult(empty, empty.copy(), x.astype(np.float64), 0)
    nfe = [0]

    def div_v(xt, t):
        vec_t = np.full(B, t)
        if divergence_fn is not None:
            ds = real_values(divergence_fn(xt, vec_t), "divergence_fn", returned=True)
            if ds.shape != (B,):
                raise ValueError(f"divergence_fn returned shape {ds.shape}, expected ({B},)")
            ds = _finite_result(ds.astype(np.float64), "divergence_fn")
        else:
            ds = divergence(lambda y: _score(score_fn, y, vec_t), xt, num_probes=num_probes,
                            kind=kind, seed=seed, counter=counter, offset=offset)
        return D * sde.drift_coeff(t) - 0.5 * sde.diffusion(t) ** 2 * ds

    def rhs(t, y):
        nfe[0] += 1
        xt = y[:B * D].reshape(x.shape).astype(x.dtype)
        dx = _ode_drift(sde, score_fn, xt, t).reshape(-1)
        return np.concatenate([dx.astype(np.float64), -div_v(xt, t)])

    y0 = np.concatenate([x.reshape(-1).astype(np.float64), np.zeros(B)])
    sol = solve_ivp(rhs, (eps, sde.T), y0, rtol=rtol, atol=atol, method=method)
    if not sol.success:
        raise RuntimeError(f"the ODE solver failed: {sol.message}")
    z = sol.y[:B * D, -1].reshape(x.shape)
    delta = sol.y[B * D:, -1]
    # d logp_t(x_t)/dt = -div v, so log p_eps(x) = log p_T(z) + int_eps^T div v dt
    logp = sde.prior_logp(z) - delta
    return LikelihoodResult(logp, -logp / (D * np.log(2)), z, nfe[0])


def _eps(sde, eps):
    """The last time of a reverse solve: default sde.sampling_eps; in [0, T)."""
    if eps is None:
        return sde.sampling_eps
    eps = nonnegative_float(eps, "eps")
    if eps >= sde.T:
        raise ValueError(f"eps must be below T = {sde.T}, got {eps}")
    return eps


def _prior(sde, shape, seed, offset, dtype, like=None):
    """Prior draw of samples offset .. offset + B: stream rows offset + b of counter 0,
    on like's GPU when given; with the drivers' array operations for it."""
    shape = shape_arg(shape)
    if not shape:
        raise ValueError("shape must have at least one axis (B, ...), got ()")
    seed, _ = stream(seed, 0)
    D = math.prod(shape[1:])
    offset = sample_offset(offset, shape[0], D)
    dt = dtype_arg(dtype)
    if like is None:
        arrays = _HostArrays.empty(shape, dt)
        _core.normal(arrays.x, seed, 0, offset * D)
        z = arrays.x
    else:
        arrays = _gpu.DriverArrays.empty(like, shape, dt)  # checks that like is a CUDA array
        z = normal(shape, seed=seed, counter=0, offset=offset, out=arrays.ref.obj)
    return arrays.scaled(z, sde.prior_std()), arrays


__all__ = ["annealed_langevin", "pc_sample", "mala", "ode_sample", "log_likelihood",
           "MalaResult", "OdeResult", "LikelihoodResult"]
