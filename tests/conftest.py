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


def mala_order_case(dtype, seed=31, counter=5):
    """mala_accept arguments whose decision the order of the sums decides: one row of
    4104 elements (two chunks of 4096 and 8), h = 1, x = 0, x' = d, score_x = 0,
    score_prop = -d, so bwd = 0 and fwd = sum d_j^2, with d_0 = 2^27 and every other
    d_j = 1. Summed as every row reduction sums (LaneSum8 per chunk, chunks left to
    right) fwd is 2^54 + 3592; as one LaneSum8 over the row it would be 2^54 + 3588
    (ones added to 2^54 are lost in some groupings). logp_proposal puts the log ratio
    at c with the first and at c - 1 with the second, for the integer c with
    c - 1 <= log u < c: only the chunked order accepts."""
    import math

    from scorekit import reference
    D = 4096 + 8
    x, score_x = np.zeros((1, D), dtype), np.zeros((1, D), dtype)
    prop = np.ones((1, D), dtype)
    prop[0, 0] = 2.0 ** 27
    u = reference.uniform(1, seed=seed, counter=counter, dtype=np.float64, offset=2 ** 62)[0]
    c = math.floor(math.log(u)) + 1.0
    logp, logp_prop = np.zeros(1), np.array([-(2.0 ** 52 + 898.0) + c])
    return (x, score_x, logp, prop, -prop, logp_prop, 1.0), dict(seed=seed, counter=counter)
