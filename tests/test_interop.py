"""The core package and other frameworks' arrays: DLPack views, device errors, no imports."""

import subprocess
import sys

import numpy as np
import pytest

import scorekit
from scorekit._interop import host_view


class Exporter:
    """A minimal DLPack producer around a NumPy array, on a device of our choosing."""

    def __init__(self, arr, device=1):
        self.arr, self.device = arr, device

    def __dlpack__(self, **kwargs):
        return self.arr.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return (self.device, 0)


def test_cpu_dlpack_arrays_are_viewed_without_copies():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    view = host_view(Exporter(arr), "x")
    assert view.ctypes.data == arr.ctypes.data
    np.testing.assert_array_equal(scorekit.perturb(Exporter(arr), 0.5, seed=1),
                                  scorekit.perturb(arr, 0.5, seed=1))


@pytest.mark.parametrize("device,name", [(2, "CUDA"), (10, "ROCm"), (99, "DLPack device type 99")])
def test_arrays_on_other_devices_are_refused_by_name(device, name):
    arr = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=f"score is on a {name} device"):
        scorekit.dsm_loss(Exporter(arr, device), 0.5, seed=1)
    with pytest.raises(TypeError, match=f"x is on a {name} device"):
        scorekit.langevin_step(Exporter(arr, device), arr, 0.1, seed=1)


class BadDevice(Exporter):
    def __dlpack_device__(self):
        return ()


def test_a_device_query_without_a_device_is_refused_by_name():
    with pytest.raises(TypeError, match="x is on a device that DLPack cannot describe"):
        scorekit.perturb(BadDevice(np.ones((3, 4), np.float32)), 0.5, seed=1)


@pytest.mark.parametrize("fw", ["torch", "jax"])
def test_coefficients_are_cast_alike_from_every_framework(fw):
    """A float64 (B,) coefficient is cast to the call's dtype as a NumPy one is, and
    GaussianMixture takes any float (B,) sigma, from PyTorch and JAX too."""
    mod = pytest.importorskip(fw)
    put = mod.from_numpy if fw == "torch" else pytest.importorskip("jax.numpy").asarray
    rng = np.random.default_rng(0)
    x, s = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    a = np.array([0.9, 1.0, 1.1])
    np.testing.assert_array_equal(scorekit.noisy_affine_step(x, s, put(a), 0.1, 0.2, seed=1).x,
                                  scorekit.noisy_affine_step(x, s, a, 0.1, 0.2, seed=1).x)
    np.testing.assert_array_equal(scorekit.corrector_step(x, s, snr=0.1, alpha=put(a), seed=1)[0],
                                  scorekit.corrector_step(x, s, snr=0.1, alpha=a, seed=1)[0])
    gm = scorekit.GaussianMixture([[0.0, 0.0], [3.0, 3.0]], 1.0)
    xg, sig = rng.standard_normal((3, 2)), np.array([0.1, 0.2, 0.3], np.float32)
    np.testing.assert_array_equal(gm.score(xg, put(sig)), gm.score(xg, sig))


def test_tensors_numpy_cannot_take_are_refused_by_name():
    torch = pytest.importorskip("torch")
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="score cannot be read as a NumPy array: .*BFloat16"):
        scorekit.langevin_step(x, torch.ones(2, 3, dtype=torch.bfloat16), 0.1, seed=1)
    with pytest.raises(TypeError, match="sigma cannot be read as a NumPy array"):
        scorekit.perturb(x, torch.tensor(0.5, dtype=torch.bfloat16), seed=1)
    with pytest.raises(TypeError, match="x cannot be read as a NumPy array: .*Sparse"):
        scorekit.perturb(torch.ones(2, 3).to_sparse(), 0.5, seed=1)


def test_integer_tensors_as_seeds():
    """0-d integer tensors count as their value (a uint64 one above 2**63 included);
    a bool tensor is refused as a bool is, and a tensor with an axis whatever its size."""
    torch = pytest.importorskip("torch")
    top = 2**64 - 1
    np.testing.assert_array_equal(scorekit.normal(5, seed=torch.tensor(top, dtype=torch.uint64)),
                                  scorekit.normal(5, seed=top))
    np.testing.assert_array_equal(scorekit.normal(5, seed=torch.tensor(7), counter=np.uint8(3)),
                                  scorekit.normal(5, seed=7, counter=3))
    with pytest.raises(TypeError, match="seed must be an integer .*, got bool"):
        scorekit.normal(5, seed=torch.tensor(True))
    with pytest.raises(TypeError, match="seed must be an integer"):
        scorekit.normal(5, seed=torch.tensor([1, 2]))
    # one element with an axis is refused as NumPy's and JAX's are, though torch can index it
    with pytest.raises(TypeError, match=r"seed must be an integer .*Tensor of shape \(1,\)"):
        scorekit.normal(5, seed=torch.tensor([5]))
    with pytest.raises(TypeError, match=r"counter must be .*Tensor of shape \(1, 1\)"):
        scorekit.normal(5, seed=1, counter=torch.tensor([[2]]))
    with pytest.raises(TypeError, match=r"num_probes must be an int >= 1, got Tensor of shape"):
        scorekit.probes((2, 3), kind="rademacher", seed=1, num_probes=torch.tensor([4]))
    with pytest.raises(TypeError, match="seed must be an integer"):  # no value to read
        scorekit.normal(5, seed=torch.empty((), dtype=torch.int64, device="meta"))


def test_core_package_imports_no_framework():
    code = ("import sys, numpy as np, scorekit; "
            "scorekit.dsm_loss(np.ones((2, 3), np.float32), 0.5, seed=1); "
            "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_framework_tensors_as_parameters_and_lazy_negation():
    torch = pytest.importorskip("torch")
    x = np.ones((4, 3), np.float32)
    want = scorekit.perturb(x, 0.5, seed=1)
    np.testing.assert_array_equal(scorekit.perturb(x, torch.tensor(0.5), seed=1), want)
    np.testing.assert_array_equal(scorekit.perturb(x, torch.full((4,), 0.5), seed=1), want)
    with pytest.raises(TypeError, match="sigma has dtype float64"):
        scorekit.perturb(x, torch.full((4,), 0.5, dtype=torch.float64), seed=1)
    # a view with PyTorch's lazy negation bit: its values, not its raw memory
    neg = torch.complex(torch.ones(4, 3), torch.full((4, 3), 2.0)).conj().imag
    assert neg.is_neg()
    np.testing.assert_array_equal(scorekit.perturb(neg, 0.5, seed=1),
                                  scorekit.perturb(np.full((4, 3), -2.0, np.float32), 0.5, seed=1))
    with pytest.raises(TypeError, match="x is on a device that DLPack cannot describe"):
        scorekit.perturb(torch.empty(4, 3, device="meta"), 0.5, seed=1)
