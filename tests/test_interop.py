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
