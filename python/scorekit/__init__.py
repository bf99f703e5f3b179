"""scorekit: fused kernels for score-based generative models.

Counter-based noise (:func:`normal`, :func:`uniform`, :func:`rademacher`),
forward perturbation (:func:`perturb`), the denoising score matching loss with
its gradient (:func:`dsm_loss`) and Langevin steps (:func:`langevin_step`),
on NumPy float32 / float64 arrays. :mod:`scorekit.reference` holds a pure-NumPy
version of each for testing and benchmarking.
"""

from __future__ import annotations

from .langevin import langevin_step
from .losses import dsm_loss
from .noise import normal, rademacher, uniform
from .perturb import perturb
from .runtime import build_info, get_num_threads, set_num_threads

__version__ = build_info()["version"]

__all__ = [
    "build_info",
    "dsm_loss",
    "get_num_threads",
    "langevin_step",
    "normal",
    "perturb",
    "rademacher",
    "set_num_threads",
    "uniform",
]
