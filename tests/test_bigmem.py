"""Arrays above 2**31 elements (64-bit indexing). Needs ~9 GB: set SCOREKIT_BIGMEM=1."""

import os

import numpy as np
import pytest

import scorekit
from scorekit import reference as ref

pytestmark = [
    pytest.mark.bigmem,
    pytest.mark.skipif(os.environ.get("SCOREKIT_BIGMEM") != "1",
                       reason="allocates more than 2**31 float32 elements; set SCOREKIT_BIGMEM=1"),
]

N = 2**31 + 80


def test_normal_and_perturb_past_two_to_the_31():
    x = np.zeros((2, N // 2), dtype=np.float32)
    sigma = np.array([1.0, 2.0], dtype=np.float32)
    scorekit.perturb(x, sigma, seed=9, counter=1, out=x)
    flat = x.reshape(-1)
    for start in (0, 2**31 - 3, N - 50):
        want = ref.normal(50, seed=9, counter=1, offset=start, precise=True)
        row_scale = np.where(np.arange(start, start + 50) < N // 2, 1.0, 2.0)
        np.testing.assert_allclose(flat[start:start + 50], row_scale * want, rtol=2e-6, atol=2e-6)
    del x, flat
    z = scorekit.normal(N, seed=9, counter=1)
    tail = ref.normal(50, seed=9, counter=1, offset=N - 50, precise=True)
    np.testing.assert_allclose(z[-50:], tail, rtol=2e-6, atol=2e-6)


def test_langevin_step_past_two_to_the_31():
    x = np.zeros((2, N // 2), dtype=np.float32)
    h = np.array([0.5, 2.0], dtype=np.float32)  # noise scale sqrt(2 h) = 1 and 2
    scorekit.langevin_step(x, x, h, seed=3, counter=7, out=x)
    flat = x.reshape(-1)
    for start in (0, 2**31 - 3, N - 50):
        want = ref.normal(50, seed=3, counter=7, offset=start, precise=True)
        row_scale = np.where(np.arange(start, start + 50) < N // 2, 1.0, 2.0)
        np.testing.assert_allclose(flat[start:start + 50], row_scale * want, rtol=4e-6, atol=4e-6)


def test_dsm_loss_past_two_to_the_31():
    """score = -z exactly, so every residual is 0 only if each element meets its own noise."""
    score = scorekit.normal((2, N // 2), seed=5, counter=2)
    np.negative(score, out=score)
    loss = scorekit.dsm_loss(score, 1.0, seed=5, counter=2, weight="none", reduction="none",
                             return_grad=False)
    np.testing.assert_array_equal(loss, np.zeros(2, np.float32))
    score[-1, -1] += 1.0  # one residual of 1 in the last element
    loss = scorekit.dsm_loss(score, 1.0, seed=5, counter=2, weight="none", reduction="none",
                             return_grad=False)
    np.testing.assert_allclose(loss, [0.0, 0.5], atol=1e-6)
