"""Data-parallel DSM training on two processes (gloo, loopback) equals one process on the batch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

WORKER = Path(__file__).with_name("ddp_worker.py")


def run(rank, world, rendezvous, out):
    return subprocess.Popen([sys.executable, str(WORKER), str(rank), str(world), rendezvous,
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc):
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, output.decode(errors="replace")


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_two_process_dsm_step_equals_single_process(tmp_path):
    single = tmp_path / "single.npz"
    finish(run(0, 1, "-", single))
    rendezvous = (tmp_path / "rendezvous").as_uri()
    procs = [run(r, 2, rendezvous, tmp_path / f"rank{r}.npz") for r in range(2)]
    for p in procs:
        finish(p)
    want = np.load(single)
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        # the shards' noise is the whole batch's; only the order of the final sums differs
        np.testing.assert_allclose(got["losses"], want["losses"], rtol=1e-13)
        np.testing.assert_allclose(got["grads"], want["grads"], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(got["params"], want["params"], rtol=1e-12, atol=1e-14)
    # the two ranks agree exactly with each other (DDP all-reduces the gradients)
    a, b = (np.load(tmp_path / f"rank{r}.npz") for r in range(2))
    np.testing.assert_array_equal(a["params"], b["params"])
