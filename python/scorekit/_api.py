"""The NumPy API's kernels by name, for the framework wrappers (``scorekit.torch``, ``scorekit.jax``).

The package namespace rebinds ``scorekit.perturb`` and ``scorekit.probes`` to
functions, so the wrappers import the kernels from here.
"""

from .langevin import langevin_step
from .losses import dsm_loss
from .noise import normal, rademacher, uniform
from .perturb import perturb
from .probes import PROBE_KINDS, probes
from .score_matching import ism_loss, ssm_loss
from .steps import noisy_affine_step

__all__ = ["PROBE_KINDS", "dsm_loss", "ism_loss", "langevin_step", "noisy_affine_step", "normal",
           "perturb", "probes", "rademacher", "ssm_loss", "uniform"]
