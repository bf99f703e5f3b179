"""Fused sampler steps: predictors and correctors of the score-SDE samplers and MALA.

Every step draws its noise from the stream ``(seed, counter)`` with position
``j`` of sample ``b`` at element ``(offset + b) * D + j``: ``offset`` is the
global index of the batch's first sample, so a batch split into shards (or run
in pieces) draws exactly the noise of the whole batch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _core, _gpu
from ._validate import (batch_array, choice, coefficient, flag, log_densities, output,
                        param_unaliased, per_sample, same_dtype, same_shape, sample_offset,
                        snr_arg, stream, unaliased)
from .sde import SDE, VESDE, VPSDE, subVPSDE

PREDICTORS = ("reverse_diffusion", "euler_maruyama", "ancestral")


class StepResult(NamedTuple):
    x: np.ndarray       # the next samples
    x_mean: np.ndarray  # the same step without its noise (what "denoise" returns)


def _pair(x, score, names=("x", "score")):
    x = batch_array(x, names[0])
    score = batch_array(score, names[1])
    same_dtype(x.dtype, **{names[1]: score})
    same_shape(x.shape, **{names[1]: score})
    return x, score


def noisy_affine_step(x, score, a, c, g, *, seed, counter=0, offset=0, out=None):
    """``x_mean = a x + c score`` and ``x_next = x_mean + g z`` in one pass.

    ``a``, ``c``, ``g``: scalars or (B,) arrays (finite). The building block
    of every predictor and corrector here; ``z`` as described in the module.

    Returns
    -------
    StepResult
        ``(x, x_mean)``; ``x`` is ``out`` when given (``out=x`` updates in place).
    """
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return StepResult(*_gpu.noisy_affine_step(x, score, a, c, g, seed=seed, counter=counter,
                                                  offset=offset, out=out))
    x, score = _pair(x, score)
    B, dt = x.shape[0], x.dtype
    a, c, g = (coefficient(v, n, B, dt) for v, n in ((a, "a"), (c, "c"), (g, "g")))
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, x[0].size if B else 0)
    out = output(out, x.shape, dt)
    x, score = unaliased(x, out), unaliased(score, out)
    a, c, g = (param_unaliased(v, out) for v in (a, c, g))
    x_mean = np.empty_like(out)
    _core.affine_step(x, score, a, c, g, seed, counter, offset, out, x_mean)
    return StepResult(out, x_mean)


def predictor_coeffs(sde, t, kind, probability_flow=False):
    """Per-sample ``(a, c, g)`` of a predictor step at times t (float64)."""
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a scorekit SDE (VESDE, VPSDE, subVPSDE), got "
                        f"{type(sde).__name__}")
    kind = choice(kind, "kind", PREDICTORS)
    w = 0.5 if flag(probability_flow, "probability_flow") else 1.0
    if kind == "euler_maruyama":  # x + (f - w g^2 s) dt + g sqrt(-dt) z with dt = -1/N
        f, g = sde.drift_coeff(t), sde.diffusion(t)
        return 1.0 - f / sde.N, w * g**2 / sde.N, (0.0 if w < 1 else 1.0) * g / np.sqrt(sde.N)
    if kind == "reverse_diffusion":  # x - (f - w G^2 s) + G z
        f, G = sde.discrete_coeffs(t)
        return 1.0 - f, w * G**2, (0.0 if w < 1 else 1.0) * G
    if w < 1:
        raise ValueError("the ancestral predictor has no probability-flow form")
    if isinstance(sde, VESDE):
        s, prev = sde.adjacent_sigmas(t)
        var = s**2 - prev**2
        return np.ones_like(s), var, np.sqrt(prev**2 * var / s**2)
    if isinstance(sde, VPSDE) and not isinstance(sde, subVPSDE):
        beta = sde.discrete_betas[sde.timestep(t)]
        return 1 / np.sqrt(1 - beta), beta / np.sqrt(1 - beta), np.sqrt(beta)
    raise ValueError(f"the ancestral predictor is defined for VESDE and VPSDE, not "
                     f"{type(sde).__name__}")


def predictor_step(sde, x, score, t, *, kind="reverse_diffusion", seed, counter=0, offset=0,
                   probability_flow=False, out=None):
    """One predictor step of the reverse-time SDE (Song et al. 2021).

    kind "euler_maruyama": ``x + (f - g^2 s) dt + g sqrt(|dt|) z``, ``dt = -1/N``;
    "reverse_diffusion": ``x - f_i + G_i^2 s + G_i z`` with the SDE's discretisation;
    "ancestral": SMLD / DDPM ancestral sampling (VESDE, VPSDE). With
    ``probability_flow`` the first two take the ODE's drift ``f - g^2 s / 2``
    and no noise.

    Parameters
    ----------
    sde : VESDE, VPSDE or subVPSDE
    x, score : arrays (B, ...), one dtype
    t : float or (B,) array
        Times (per sample allowed).
    seed, counter, offset : int
        Noise stream and the global index of the first sample.

    Returns
    -------
    StepResult
    """
    t_arr = np.asarray(t)
    B = np.shape(x)[0] if np.ndim(x) else 0
    if t_arr.ndim == 1 and t_arr.shape != (B,):
        raise ValueError(f"t must be a scalar or have shape (B,) = ({B},), got {t_arr.shape}")
    a, c, g = predictor_coeffs(sde, t, kind, probability_flow)
    return noisy_affine_step(x, score, a, c, g, seed=seed, counter=counter, offset=offset,
                             out=out)


def corrector_alpha(sde, t):
    """The Langevin corrector's alpha: alpha_i of the grid for VP / sub-VP, 1 for VE."""
    if isinstance(sde, VPSDE):
        return sde.alphas[sde.timestep(t)]
    return np.ones_like(np.asarray(t, dtype=np.float64))


def corrector_step(x, score, *, snr, alpha=1.0, seed, counter=0, offset=0, per_sample=False,
                   out=None):
    """Langevin corrector step with the signal-to-noise step size.

    ``eps = 2 alpha (snr |z| / |s|)**2``, from the batch means of the norms
    of the noise and the score (as the score-SDE code) or, with
    ``per_sample``, from each sample's own; then ``x_mean = x + eps s`` and
    ``x = x_mean + sqrt(2 eps) z``. Norms are float64 sums in a fixed order.
    A zero score norm (or ``snr = 0``) gives ``eps = 0``: no move.

    Returns
    -------
    (x, x_mean, step_size)
        ``step_size`` is the float64 (B,) eps used.
    """
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return _gpu.corrector_step(x, score, snr=snr, alpha=alpha, seed=seed, counter=counter,
                                   offset=offset, per_sample=per_sample, out=out)
    x, score = _pair(x, score)
    B, dt = x.shape[0], x.dtype
    snr_v = snr_arg(snr)
    alpha = coefficient(alpha, "alpha", B, dt, nonnegative=True)
    per = flag(per_sample, "per_sample")
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, x[0].size if B else 0)
    out = output(out, x.shape, dt)
    x, score = unaliased(x, out), unaliased(score, out)
    alpha = param_unaliased(alpha, out)
    x_mean = np.empty_like(out)
    step = np.empty(B)
    _core.langevin_corrector(x, score, snr_v, alpha, per, seed, counter, offset, out, x_mean, step)
    return out, x_mean, step


def mala_propose(x, score, step_size, *, seed, counter=0, offset=0):
    """MALA proposal ``x + h s(x) + sqrt(2 h) z`` (the unadjusted Langevin step)."""
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return _gpu.mala_propose(x, score, step_size, seed=seed, counter=counter, offset=offset)
    x, score = _pair(x, score)
    # sqrt(2 h) is taken in float64: 2 h must be finite there
    h = per_sample(step_size, "step_size", x.shape[0], x.dtype, positive=True,
                   doubled=x.dtype == np.float64)
    return noisy_affine_step(x, score, 1.0, h, np.sqrt(2.0 * h.astype(np.float64)), seed=seed,
                             counter=counter, offset=offset).x


class MalaState(NamedTuple):
    x: np.ndarray
    score: np.ndarray
    logp: np.ndarray      # float64 (B,)
    accepted: np.ndarray  # bool (B,): this step's decisions


def mala_accept(x, score, logp, proposal, score_proposal, logp_proposal, step_size, *, seed,
                counter=0, offset=0):
    """Metropolis-Hastings test of MALA proposals, per chain, in one kernel.

    ``log r = log p(x') - log p(x) + log q(x | x') - log q(x' | x)`` with
    ``q(a | b) = N(a; b + h s(b), 2 h I)``; the proposal is taken when
    ``log u < log r`` with ``u`` the float64 uniform at stream element
    ``2**62 + offset + b`` of ``(seed, counter)`` (the counter of the proposal
    may be reused: its normals lie far below). NaN in a log-density or a score
    rejects. Returns the new state and the decisions.
    """
    if type(x) is not np.ndarray and _gpu.on_cuda(x, "x"):
        return MalaState(*_gpu.mala_accept(x, score, logp, proposal, score_proposal,
                                           logp_proposal, step_size, seed=seed, counter=counter,
                                           offset=offset))
    x, score = _pair(x, score)
    proposal, score_proposal = _pair(proposal, score_proposal, ("proposal", "score_proposal"))
    same_dtype(x.dtype, proposal=proposal)
    same_shape(x.shape, proposal=proposal)
    B = x.shape[0]
    logp = log_densities(logp, "logp", B)
    logp_proposal = log_densities(logp_proposal, "logp_proposal", B)
    h = per_sample(step_size, "step_size", B, x.dtype, positive=True)
    seed, counter = stream(seed, counter)
    offset = sample_offset(offset, B, x[0].size if B else 0)
    x_out, s_out, l_out = np.empty_like(x), np.empty_like(score), np.empty(B)
    acc = np.empty(B, dtype=np.uint8)
    _core.mala_accept(x, score, logp, proposal, score_proposal, logp_proposal, h, seed, counter,
                      offset, x_out, s_out, l_out, acc)
    return MalaState(x_out, s_out, l_out, acc.astype(bool))


