"""Gaussian mixtures with exact scores at every noise level."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core, _gpu
from ._interop import host_view
from ._validate import batch_array, count, dtype_arg, per_sample, stream
from .noise import normal, uniform


class GaussianMixture:
    """A mixture of Gaussians with isotropic or diagonal covariances.

    Its convolution with ``N(0, sigma**2 I)`` is again such a mixture, with
    variances ``stds**2 + sigma**2``, so the log-density, the score and the
    score's divergence are exact at every noise level: the targets of denoising
    score matching and of annealed samplers.

    Parameters
    ----------
    means : array_like, shape (K, D)
    stds : float or array_like of shape (K,) or (K, D)
        Standard deviations, > 0: one for all, one per component (isotropic)
        or one per component and axis (diagonal).
    weights : array_like of shape (K,), optional
        Positive mixture weights, normalised to sum to 1 (default: equal).

    Parameters are held in float64; ``score`` returns x's dtype, ``log_prob``
    and ``score_divergence`` float64. The kernels evaluate the log-sum-exp over
    components one sample at a time, in float64, without forming a
    ``(B, K, D)`` array. A PyTorch CUDA tensor or CuPy array ``x`` is evaluated
    on its GPU (one thread per sample, the CPU's arithmetic order) and the
    results are arrays of its framework there; the device's ``exp`` and ``log``
    are not the host's, so they agree with the CPU's to a few units in the last
    place rather than bit for bit.
    """

    def __init__(self, means, stds, weights=None):
        means = np.array(means, dtype=np.float64, ndmin=2)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, D) with K, D >= 1, got {means.shape}")
        K, D = means.shape
        stds = np.asarray(stds, dtype=np.float64)
        if stds.ndim == 0 or stds.shape == (K,):
            stds = np.broadcast_to(stds.reshape(-1, 1) if stds.ndim else stds, (K, D))
        elif stds.shape != (K, D):
            raise ValueError(f"stds must be a scalar or have shape (K,) = ({K},) or (K, D) = "
                             f"{(K, D)}, got {stds.shape}")
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(stds)) and np.all(stds > 0)):
            raise ValueError("means must be finite and stds finite and > 0")
        var = stds**2
        if not (np.all(np.isfinite(var)) and np.all(var > 0)):
            raise ValueError("stds must have a finite, nonzero square in float64 "
                             "(between about 1e-154 and 1e154)")
        if weights is None:
            weights = np.full(K, 1.0 / K)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape (K,) = ({K},), got {weights.shape}")
        if not (np.all(np.isfinite(weights)) and np.all(weights > 0)):
            raise ValueError("weights must be finite and > 0")
        weights = weights / weights.max()  # then the sum cannot overflow
        self._means = np.ascontiguousarray(means)
        self._stds = np.ascontiguousarray(stds)
        self._weights = weights / weights.sum()
        self._vars = np.ascontiguousarray(var)
        self._log_weights = np.log(self._weights)
        for a in (self._means, self._stds, self._weights, self._vars, self._log_weights):
            a.flags.writeable = False
        self._on_devices = {}  # the parameters on each GPU that evaluated the mixture

    @property
    def means(self) -> np.ndarray:
        """(K, D) component means (read-only)."""
        return self._means

    @property
    def stds(self) -> np.ndarray:
        """(K, D) component standard deviations (read-only)."""
        return self._stds

    @property
    def weights(self) -> np.ndarray:
        """(K,) normalised weights (read-only)."""
        return self._weights

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    def log_prob(self, x, sigma=0.0):
        """``log p_sigma(x)`` per sample: float64 ``(B,)``."""
        return self._eval(x, sigma, want_score=False, want_div=False)[0]

    def score(self, x, sigma=0.0):
        """``grad_x log p_sigma(x)``: x's shape and dtype."""
        return self._eval(x, sigma, want_score=True, want_div=False)[1]

    def score_divergence(self, x, sigma=0.0):
        """``tr(d score / d x)`` per sample, exact: float64 ``(B,)``."""
        return self._eval(x, sigma, want_score=False, want_div=True)[2]

    def evaluate(self, x, sigma=0.0):
        """``(log_prob, score, score_divergence)`` in one pass."""
        return self._eval(x, sigma, want_score=True, want_div=True)

    def sample(self, n, *, seed, counter=0, dtype=np.float64):
        """``n`` samples of the mixture (at noise level 0), shape ``(n, D)``.

        Sample ``b`` uses row ``b`` of the stream ``(seed, counter)`` viewed
        as float64 rows of ``R = 2 * ceil(D / 2) + 2`` elements: normals
        ``z`` at its first ``D`` elements and the uniform that picks the
        component (inverse CDF of the weights) at element ``R - 2``, a Philox
        block of its own. So sample ``b`` does not depend on ``n``.
        """
        n = count(n, "n", 0)
        seed, counter = stream(seed, counter)
        dtype = dtype_arg(dtype)
        D = self.dim
        R = 2 * ((D + 1) // 2) + 2
        z = normal((n, R), seed=seed, counter=counter, dtype=np.float64)[:, :D]
        u = uniform((n, R), seed=seed, counter=counter, dtype=np.float64)[:, R - 2]
        comp = np.minimum(np.searchsorted(np.cumsum(self.weights), u, side="right"),
                          self.num_components - 1)
        out = self.means[comp] + self.stds[comp] * z
        return out.astype(dtype, copy=False)

    def _eval(self, x, sigma, *, want_score, want_div):
        on_gpu = type(x) is not np.ndarray and _gpu.on_cuda(x, "x")
        if on_gpu:
            _gpu.like_array(x, name="x")  # PyTorch or CuPy (a JAX array is refused by name)
            x = _gpu.batch(x, "x")
        else:
            x = batch_array(x, "x")
        if len(x.shape) != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, D) = (B, {self.dim}), got {x.shape}")
        B = x.shape[0]
        if on_gpu:
            sigma = _gpu.host_parameter(sigma, "sigma", x)
        if not on_gpu and not isinstance(sigma, (np.ndarray, numbers.Real)):
            sigma = host_view(sigma, "sigma")  # as NumPy's: the same from every framework
        if isinstance(sigma, np.ndarray) and sigma.ndim == 1 and sigma.dtype.kind == "f":
            sigma = sigma.astype(np.float64)  # any float (B,) array: parameters are float64
        sig = per_sample(sigma, "sigma", B, np.dtype(np.float64), nonnegative=True)
        if not np.all(np.abs(sig) < 1e154):
            raise ValueError("sigma must have a finite square (below about 1e154)")
        if on_gpu:
            return _gpu.gmm_eval(self._means, self._vars, self._log_weights, x, sig,
                                 want_score=want_score, want_div=want_div,
                                 cache=self._on_devices)
        log_p = np.empty(B)
        score = np.empty_like(x) if want_score else None
        div = np.empty(B) if want_div else None
        _core.gmm_eval(self._means, self._vars, self._log_weights, x, sig, log_p, score, div)
        return log_p, score, div

    def __repr__(self):
        return f"GaussianMixture(K={self.num_components}, D={self.dim})"
