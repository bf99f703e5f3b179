"""scorekit: fused kernels for score-based generative models.

Counter-based noise (:func:`normal`, :func:`uniform`, :func:`rademacher`,
:func:`probes`), forward perturbation (:func:`perturb`), the denoising, sliced
and implicit score matching losses with their gradients (:func:`dsm_loss`,
:func:`ssm_loss`, :func:`ism_loss`), Langevin steps (:func:`langevin_step`),
and trace estimation over batches of operators (:func:`hutchinson`,
:func:`hutchpp`, :func:`xtrace`, :func:`diagonal`, :func:`divergence`), on
NumPy float32 / float64 arrays. :mod:`scorekit.reference` holds a pure-NumPy
version of each for testing and benchmarking.
"""

from __future__ import annotations

from . import _core
from .divergence import divergence
from .gmm import GaussianMixture
from .langevin import langevin_step
from .losses import dsm_loss
from .noise import normal, rademacher, uniform
from .perturb import perturb
from .probes import probes
from .runtime import (build_info, device_losses, device_value_checks, get_num_threads,
                      gpu_available, set_num_threads)
from .samplers import (LikelihoodResult, MalaResult, OdeResult, annealed_langevin,
                       log_likelihood, mala, ode_sample, pc_sample)
from .score_matching import ism_loss, ssm_loss
from .sde import SDE, VESDE, VPSDE, geometric_sigmas, karras_sigmas, subVPSDE
from .steps import (MalaState, StepResult, corrector_step, mala_accept, mala_propose,
                    noisy_affine_step, predictor_step)
from .trace import DiagonalEstimate, TraceEstimate, diagonal, hutchinson
from .trace_sketch import hutchpp, xtrace

__version__ = _core.build_info()["version"]  # no CUDA query at import (fork safety)

__all__ = [
    "DiagonalEstimate",
    "GaussianMixture",
    "LikelihoodResult",
    "MalaResult",
    "MalaState",
    "OdeResult",
    "SDE",
    "StepResult",
    "VESDE",
    "VPSDE",
    "annealed_langevin",
    "corrector_step",
    "geometric_sigmas",
    "karras_sigmas",
    "log_likelihood",
    "mala",
    "mala_accept",
    "mala_propose",
    "noisy_affine_step",
    "ode_sample",
    "pc_sample",
    "predictor_step",
    "subVPSDE",
    "TraceEstimate",
    "build_info",
    "device_losses",
    "device_value_checks",
    "gpu_available",
    "diagonal",
    "divergence",
    "dsm_loss",
    "get_num_threads",
    "hutchinson",
    "hutchpp",
    "ism_loss",
    "langevin_step",
    "normal",
    "perturb",
    "probes",
    "rademacher",
    "set_num_threads",
    "ssm_loss",
    "uniform",
    "xtrace",
]
