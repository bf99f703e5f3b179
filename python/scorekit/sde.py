"""Score SDEs (Song et al. 2021) and noise schedules.

The formulas are those of the score-SDE paper and its reference code: the
variance-exploding, variance-preserving and sub-VP SDEs with their marginals,
discretisations (SMLD and DDPM), priors and prior log-densities. Times ``t``
are scalars or ``(B,)`` arrays; every drift is linear in ``x``
(``f(x, t) = drift_coeff(t) * x``), which is what lets the sampler steps be
fused affine updates.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import batch_array, count, dtype_arg, shape_arg, stream
from .noise import normal


def _times(t, T=1.0):
    t = np.asarray(t, dtype=np.float64)
    if t.ndim > 1:
        raise ValueError(f"t must be a scalar or a (B,) array, got shape {t.shape}")
    if not np.all((t >= 0) & (t <= T)):
        raise ValueError(f"t must lie in [0, T] = [0, {T}]")
    return t


def _positive(value, name):
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _expand(coeff, x):
    """A scalar or (B,) coefficient shaped to broadcast over x (B, ...)."""
    coeff = np.asarray(coeff)
    return coeff.reshape(coeff.shape + (1,) * (x.ndim - coeff.ndim)) if coeff.ndim else coeff


class SDE:
    """dx = f(x, t) dt + g(t) dw on t in [0, T], T = 1, discretised in N steps."""

    T = 1.0
    sampling_eps = 1e-3

    def __init__(self, N):
        self.N = count(N, "N")

    # Coefficients, per time: the x-free parts of the formulas.
    def drift_coeff(self, t):
        raise NotImplementedError

    def diffusion(self, t):
        raise NotImplementedError

    def marginal_coeffs(self, t):
        """``(mean_coeff, std)``: x_t | x_0 ~ N(mean_coeff * x_0, std**2 I)."""
        raise NotImplementedError

    def discrete_coeffs(self, t):
        """``(f_coeff, G)`` of the discretisation x_{i+1} = x_i + f_coeff x_i + G z."""
        dt = 1.0 / self.N
        t = _times(t)
        return self.drift_coeff(t) * dt, self.diffusion(t) * np.sqrt(dt)

    # The score-SDE interface on arrays.
    def sde(self, x, t):
        """``(drift, diffusion)`` at (x, t): drift of x's shape, diffusion per sample."""
        return _expand(self.drift_coeff(t), x) * x, self.diffusion(t)

    def marginal_prob(self, x, t):
        """``(mean, std)`` of x_t given x_0 = x."""
        m, s = self.marginal_coeffs(t)
        return _expand(m, x) * x, s

    def discretize(self, x, t):
        """``(f, G)``: f of x's shape, G per sample."""
        f, G = self.discrete_coeffs(t)
        return _expand(f, x) * x, G

    def timestep(self, t):
        """Index of t on the discretisation grid: int(t (N - 1) / T)."""
        return (_times(t) * (self.N - 1) / self.T).astype(np.int64)

    def prior_std(self):
        raise NotImplementedError

    def prior_sampling(self, shape, *, seed, counter=0, dtype=np.float32):
        """A draw from the prior N(0, prior_std**2 I): ``prior_std * normal(shape)``."""
        shape = shape_arg(shape)
        seed, counter = stream(seed, counter)
        z = normal(shape, seed=seed, counter=counter, dtype=dtype_arg(dtype))
        return (z * z.dtype.type(self.prior_std())).astype(z.dtype, copy=False)

    def prior_logp(self, z):
        """Log-density of the prior at each sample of z (B, ...): float64 (B,)."""
        z = batch_array(z, "z").astype(np.float64)
        D = math.prod(z.shape[1:])
        s2 = self.prior_std() ** 2
        return -0.5 * D * np.log(2 * np.pi * s2) - 0.5 * np.sum(
            z.reshape(z.shape[0], D) ** 2, axis=1) / s2


class VESDE(SDE):
    """Variance exploding: sigma(t) = sigma_min (sigma_max / sigma_min)**t, no drift."""

    sampling_eps = 1e-5

    def __init__(self, sigma_min=0.01, sigma_max=50.0, N=1000):
        super().__init__(N)
        self.sigma_min = _positive(sigma_min, "sigma_min")
        self.sigma_max = _positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError("sigma_max must be > sigma_min")
        self.discrete_sigmas = np.exp(np.linspace(np.log(self.sigma_min),
                                                  np.log(self.sigma_max), self.N))

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** _times(t)

    def drift_coeff(self, t):
        return np.zeros_like(_times(t))

    def diffusion(self, t):
        return self.sigma(t) * np.sqrt(2 * np.log(self.sigma_max / self.sigma_min))

    def marginal_coeffs(self, t):
        s = self.sigma(t)
        return np.ones_like(s), s

    def prior_std(self):
        return self.sigma_max

    def adjacent_sigmas(self, t):
        """``(sigma_i, sigma_{i-1})`` on the grid, with sigma_{-1} = 0."""
        i = self.timestep(t)
        prev = np.where(i == 0, 0.0, self.discrete_sigmas[np.maximum(i - 1, 0)])
        return self.discrete_sigmas[i], prev

    def discrete_coeffs(self, t):
        """SMLD: f = 0, G = sqrt(sigma_i**2 - sigma_{i-1}**2)."""
        s, prev = self.adjacent_sigmas(t)
        return np.zeros_like(s), np.sqrt(s**2 - prev**2)


class VPSDE(SDE):
    """Variance preserving: beta(t) = beta_min + t (beta_max - beta_min), f = -beta x / 2."""

    def __init__(self, beta_min=0.1, beta_max=20.0, N=1000):
        super().__init__(N)
        self.beta_0 = _positive(beta_min, "beta_min")
        self.beta_1 = _positive(beta_max, "beta_max")
        if max(self.beta_0, self.beta_1) / self.N >= 1:
            raise ValueError(f"N = {self.N} is too small: the discrete betas beta / N must be "
                             "below 1")
        self.discrete_betas = np.linspace(self.beta_0 / self.N, self.beta_1 / self.N, self.N)
        self.alphas = 1.0 - self.discrete_betas
        self.alphas_cumprod = np.cumprod(self.alphas)

    def beta(self, t):
        return self.beta_0 + _times(t) * (self.beta_1 - self.beta_0)

    def log_mean_coeff(self, t):
        t = _times(t)
        return -0.25 * t**2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0

    def drift_coeff(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return np.sqrt(self.beta(t))

    def marginal_coeffs(self, t):
        lmc = self.log_mean_coeff(t)
        return np.exp(lmc), np.sqrt(1.0 - np.exp(2.0 * lmc))

    def prior_std(self):
        return 1.0

    def discrete_coeffs(self, t):
        """DDPM: f = (sqrt(alpha_i) - 1) x, G = sqrt(beta_i)."""
        i = self.timestep(t)
        return np.sqrt(self.alphas[i]) - 1.0, np.sqrt(self.discrete_betas[i])


class subVPSDE(VPSDE):
    """Sub-VP: the VP drift with diffusion sqrt(beta(t) (1 - exp(-2 int beta)))."""

    def diffusion(self, t):
        t = _times(t)
        discount = 1.0 - np.exp(-2.0 * self.beta_0 * t - (self.beta_1 - self.beta_0) * t**2)
        return np.sqrt(self.beta(t) * discount)

    def marginal_coeffs(self, t):
        lmc = self.log_mean_coeff(t)
        return np.exp(lmc), 1.0 - np.exp(2.0 * lmc)

    discrete_coeffs = SDE.discrete_coeffs  # Euler-Maruyama discretisation, as the reference


def geometric_sigmas(sigma_max, sigma_min, n):
    """NCSN noise levels: n values from sigma_max down to sigma_min, geometrically spaced."""
    hi, lo = _positive(sigma_max, "sigma_max"), _positive(sigma_min, "sigma_min")
    if lo >= hi:
        raise ValueError("sigma_max must be > sigma_min")
    return np.exp(np.linspace(np.log(hi), np.log(lo), count(n, "n", 2)))


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """Karras et al. (2022) levels, descending:
    (sigma_max**(1/rho) + i / (n - 1) (sigma_min**(1/rho) - sigma_max**(1/rho)))**rho."""
    n = count(n, "n", 2)
    lo, hi, rho = (_positive(sigma_min, "sigma_min"), _positive(sigma_max, "sigma_max"),
                   _positive(rho, "rho"))
    if lo >= hi:
        raise ValueError("sigma_max must be > sigma_min")
    try:
        top, bottom = hi ** (1 / rho), lo ** (1 / rho)
    except OverflowError:
        top = bottom = math.inf
    if not (0 < bottom and top < math.inf):
        raise ValueError(f"rho = {rho} is too small for sigma_min = {lo} and sigma_max = {hi}: "
                         "their 1/rho-th powers leave the float64 range")
    ramp = np.linspace(0.0, 1.0, n)
    return (top + ramp * (bottom - top)) ** rho
