import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import scorekit

settings.register_profile(
    "scorekit",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", parent=settings.get_profile("scorekit"), max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "scorekit"))

DTYPES = (np.float32, np.float64)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    before = scorekit.get_num_threads()
    yield
    scorekit.set_num_threads(before)


def tolerance(dtype):
    """Relative tolerance of a float32 / float64 kernel against the float64 reference."""
    return 2e-6 if np.dtype(dtype) == np.float32 else 1e-13
