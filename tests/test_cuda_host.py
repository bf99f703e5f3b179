"""Host-side pieces of the CUDA backend, tested without a GPU.

- cuda/grid.hpp (the launchers' work layout): tests/native/cuda_grid.cpp checks
  on the host that every element is covered exactly once, with the value index
  the scalar fill gives it, for awkward sizes, offsets and grid sizes.
- cuda/staging.hpp (page-locked staging of host parameters past about 32 KB,
  4 KB before CUDA 12.1): tests/native/cuda_staging.cpp runs it over a
  stand-in runtime.
- The kernels of cuda/*.cu run under the emulation of tests/native/cuda_emulation,
  against the CPU backend; cuda/inline_copy.cuh (host parameters carried in a
  copy kernel's parameters) runs there too, built for CUDA 13 and for 11.8
  (tests/native/cuda_inline_copy.cpp).
- The routing of CUDA arrays (scorekit/_gpu.py): refused with an error naming
  the argument when the build or the machine cannot serve them, and checked
  (dtype, layout, device, read-only outputs) before any kernel is launched.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import scorekit
from scorekit import _gpu

ROOT = Path(__file__).resolve().parents[1]


def _run_native(tmp_path, name: str, sanitize: bool = False) -> None:
    """Builds tests/native/<name>.cpp against cuda/ and expects it to print "ok".
    ``sanitize``: with AddressSanitizer and UBSan where the compiler has them."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    exe = tmp_path / name
    cmd = [gxx, "-std=c++17", "-O2", f"-I{ROOT / 'cpp/include'}", f"-I{ROOT / 'cuda'}",
           str(ROOT / f"tests/native/{name}.cpp"), "-o", str(exe)]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
    if not (sanitize and subprocess.run(cmd + san, check=False, capture_output=True).returncode
            == 0):
        subprocess.run(cmd, check=True)
    res = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr[-2000:]


def test_launch_layout_covers_every_element_once(tmp_path):
    _run_native(tmp_path, "cuda_grid")


def test_host_copies_are_staged_without_waiting_for_the_stream(tmp_path):
    """cuda/staging.hpp over a stand-in runtime whose GPU runs behind the host:
    no slot is written while a copy from it is queued, every copy delivers its
    call's bytes, slots are reused and bounded, refusals enqueue nothing."""
    _run_native(tmp_path, "cuda_staging", sanitize=True)


class FakeCuda:
    """An object that reports a CUDA device and a CUDA array interface."""

    def __init__(self, shape=(3, 4), typestr="<f4", strides=None, readonly=False, device=0,
                 ptr=4096):
        self.shape, self.device_id = shape, device
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "strides": strides,
                                         "data": (ptr, readonly), "version": 3}

    def __dlpack__(self, **kwargs):
        raise AssertionError("must not be exported")

    def __dlpack_device__(self):
        return (2, self.device_id)


class FakeCupyArray(FakeCuda):
    pass


FakeCupyArray.__module__ = "cupy._core.core"  # routed as a CuPy array


class Backend:
    """Stands in for scorekit._cuda: records launches instead of running them."""

    def __init__(self, devices=1):
        self.devices, self.calls, self.uploads = devices, [], []

    def upload(self, host, dst, device, stream):
        self.uploads.append((host.copy(), dst, device, stream))

    def device_count(self):
        return self.devices

    @staticmethod
    def dsm_work(B, D):
        return 0

    @staticmethod
    def ssm_work(B, K, D):
        return 4 * B * K + B

    @staticmethod
    def ism_work(B, D):
        return 0

    @staticmethod
    def corrector_work(B, D):
        return 4 * B + 2

    @staticmethod
    def mala_work(B, D):
        return 2 * B

    @staticmethod
    def sphere_work(rows, D):
        return 0

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


@pytest.fixture
def backend(monkeypatch):
    fake = Backend()
    monkeypatch.setattr(_gpu, "_cuda", fake)
    monkeypatch.setattr(_gpu._CuPy, "stream", staticmethod(lambda x: 0))
    return fake


def test_without_the_cuda_backend_arrays_are_refused_by_name(monkeypatch):
    monkeypatch.setattr(_gpu, "_cuda", None)
    with pytest.raises(TypeError, match="x is on a CUDA device.*no CUDA backend"):
        scorekit.perturb(FakeCuda(), 0.5, seed=1)
    with pytest.raises(TypeError, match="score is on a CUDA device.*no CUDA backend"):
        scorekit.dsm_loss(FakeCuda(), 0.5, seed=1)
    with pytest.raises(TypeError, match="out is on a CUDA device.*no CUDA backend"):
        scorekit.normal((3, 4), seed=1, out=FakeCuda())
    assert scorekit.build_info()["cuda_compiled"] is False


def test_without_a_device_arrays_are_refused_by_name(monkeypatch):
    monkeypatch.setattr(_gpu, "_cuda", Backend(devices=0))
    with pytest.raises(TypeError, match="x is on a CUDA device.*sees no device"):
        scorekit.langevin_step(FakeCuda(), FakeCuda(), 0.1, seed=1)
    assert not scorekit.gpu_available()


def test_other_frameworks_are_named(backend):
    with pytest.raises(TypeError, match="x is a CUDA array of type FakeCuda.*PyTorch.*CuPy"):
        scorekit.perturb(FakeCuda(), 0.5, seed=1)


@pytest.mark.parametrize("typestr", ["<f2", "<i4", "<c8"])
def test_dtypes_are_checked(backend, typestr):
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        scorekit.perturb(FakeCupyArray(typestr=typestr), 0.5, seed=1)
    assert backend.calls == []


def test_outputs_are_checked(backend):
    x = FakeCupyArray()
    with pytest.raises(ValueError, match="out is read-only"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(readonly=True, ptr=8192))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(strides=(4, 12), ptr=8192))
    with pytest.raises(ValueError, match="out must have shape"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(shape=(4, 3), ptr=8192))
    with pytest.raises(ValueError, match="out is on CUDA device 1"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(device=1, ptr=8192))
    with pytest.raises(ValueError, match="out overlaps x"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(ptr=4096 + 8))
    with pytest.raises(ValueError, match="out must be a CUDA array"):
        scorekit.perturb(x, 0.5, seed=1, out=np.empty((3, 4), np.float32))
    assert backend.calls == []


def test_mixed_devices_and_dtypes_are_refused(backend):
    x = FakeCupyArray()
    with pytest.raises(ValueError, match="score is on CUDA device 1"):
        scorekit.langevin_step(x, FakeCupyArray(device=1, ptr=8192), 0.1, seed=1)
    with pytest.raises(TypeError, match="score has dtype float64"):
        scorekit.langevin_step(x, FakeCupyArray(typestr="<f8", ptr=8192), 0.1, seed=1)
    with pytest.raises(ValueError, match="score must be a CUDA array"):
        scorekit.langevin_step(x, np.ones((3, 4), np.float32), 0.1, seed=1)
    with pytest.raises(ValueError, match="noise must be a CUDA array"):
        scorekit.dsm_loss(x, 0.5, noise=np.ones((3, 4), np.float32))
    assert backend.calls == []


def test_scalar_parameters_are_checked_as_on_the_cpu(backend):
    x = FakeCupyArray()
    for bad, match in [(0.0, "sigma must be > 0"), (float("nan"), "sigma must be finite"),
                       (1e-46, r"sigma must be > 0 \(in float32\)")]:
        with pytest.raises(ValueError, match=match):
            scorekit.perturb(x, bad, seed=1)
    with pytest.raises(ValueError, match="seed must be in"):
        scorekit.perturb(x, 0.5, seed=-1)
    assert backend.calls == []


def test_valid_calls_reach_the_launchers_with_the_cpu_layout(backend):
    x = FakeCupyArray(shape=(3, 4))
    out = FakeCupyArray(shape=(3, 4), ptr=1 << 20)
    assert scorekit.perturb(x, 0.5, seed=7, counter=2, offset=5, scale=0.9, out=out) is out
    name, args = backend.calls[-1]
    # x, B, D, scale (pointer, value), sigma (pointer, value), seed, counter, first sample, out
    assert name == "perturb"
    assert args[:11] == (4096, 3, 4, 0, pytest.approx(0.9), 0, 0.5, 7, 2, 5, 1 << 20)
    assert args[11] == 4  # float32
    scorekit.normal((3, 4), seed=7, counter=2, offset=5, out=out)
    name, args = backend.calls[-1]
    # kind, out, n, itemsize, seed, counter, first stream element = offset * D
    assert name == "fill_noise" and args[:7] == (0, 1 << 20, 12, 4, 7, 2, 20)


class FakeTorchTensor(FakeCuda):
    requires_grad = False

    def is_neg(self):
        return False

    def is_conj(self):
        return False


FakeTorchTensor.__module__ = "torch"


def test_a_parameter_inside_out_is_copied_first(backend, monkeypatch):
    copies = []

    def copy(x):
        copies.append(x)
        return FakeCupyArray(shape=x.shape, ptr=1 << 24)

    monkeypatch.setattr(_gpu._CuPy, "copy", staticmethod(copy))
    monkeypatch.setattr(_gpu._CuPy, "host", staticmethod(lambda x: np.full(x.shape, 0.5,
                                                                            np.float32)))
    x, out = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 4), ptr=1 << 20)
    sigma = FakeCupyArray(shape=(3,), ptr=(1 << 20) + 8)  # lies inside out
    scorekit.perturb(x, sigma, seed=1, out=out)
    name, args = backend.calls[-1]
    assert copies == [sigma] and args[5] == 1 << 24  # the kernel reads the copy
    far = FakeCupyArray(shape=(3,), ptr=1 << 22)  # elsewhere: read where it is
    scorekit.perturb(x, far, seed=1, out=out)
    assert backend.calls[-1][1][5] == 1 << 22 and len(copies) == 1


def test_zero_d_device_parameters_are_numbers(backend, monkeypatch):
    monkeypatch.setattr(_gpu._CuPy, "host", staticmethod(lambda x: np.array(0.25)))
    scorekit.perturb(FakeCupyArray(), FakeCupyArray(shape=(), typestr="<f8", ptr=1 << 22),
                     seed=1, out=FakeCupyArray(ptr=1 << 20))
    args = backend.calls[-1][1]
    assert args[5:7] == (0, 0.25)  # by value, cast like a number


def test_frameworks_and_output_dtypes_are_not_mixed(backend):
    x = FakeCupyArray()
    with pytest.raises(TypeError, match="sigma and the call's other arrays come from different"):
        scorekit.perturb(x, FakeTorchTensor(shape=(3,), ptr=1 << 22), seed=1)
    with pytest.raises(ValueError, match="out must have dtype float32, got float64"):
        scorekit.perturb(x, 0.5, seed=1, out=FakeCupyArray(typestr="<f8", ptr=1 << 22))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        scorekit.normal((3, 4), seed=1, dtype=np.int32, out=x)
    assert backend.calls == []


def test_a_visible_gpu_is_usable_when_the_backend_is_built():
    """Where the backend is built and PyTorch sees a GPU, scorekit must see it too
    (rather than the GPU tests skipping silently): a driver too old for the CUDA
    version scorekit was built with shows up here with the runtime's reason."""
    torch = pytest.importorskip("torch")
    if not (_gpu.compiled() and torch.cuda.is_available()):
        pytest.skip("needs the CUDA backend and a GPU visible to PyTorch")
    assert scorekit.gpu_available(), _gpu._cuda.runtime_status()


CUDA_SOURCES = ("kernels.cu", "score_matching.cu", "steps.cu", "trace.cu", "gmm.cu")


def emulated_cuda_sources(tmp_path):
    """cuda/*.cu and *.cuh with their kernel<<<...>>>(...) launches as emu::launch calls,
    written under tmp_path (which goes first on the include path)."""
    import re
    launch = re.compile(r"(\w+(?:<(?:[^<>]|<[^<>]*>)*>)?)\s*<<<(.*?)>>>\(", re.S)
    total = 0
    for src in sorted((ROOT / "cuda").glob("*.cu*")):
        if src.name == "instantiate_headers.cu":
            continue
        out, count = launch.subn(lambda m: f"emu::launch(emu::cfg({m[2]}), {m[1]}, ",
                                 src.read_text())
        total += count
        (tmp_path / (src.name + (".cpp" if src.suffix == ".cu" else ""))).write_text(out)
    assert total >= 16, "the launch syntax of cuda/ changed: update this rewrite"
    return [tmp_path / (name + ".cpp") for name in CUDA_SOURCES]


def test_cuda_kernels_under_emulation_match_the_cpu(tmp_path):
    """The launchers of cuda/*.cu on the host (blocks of threads as fibers
    with barriers, tests/native/cuda_emulation) against the CPU backend, bit for bit."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    flags = ["-std=c++20", "-O1", "-pthread", "-ffp-contract=off", "-fno-fast-math",
             "-fno-math-errno", f"-I{tmp_path}", f"-I{ROOT / 'tests/native/cuda_emulation'}",
             f"-I{ROOT / 'cuda'}", f"-I{ROOT / 'cpp/include'}", f"-I{ROOT / 'cpp/src'}"]
    cpu = [str(ROOT / f"cpp/src/{s}.cpp") for s in
           ("threads", "simd", "noise_cpu", "elementwise_cpu", "dsm_cpu", "steps_cpu",
            "probes_cpu", "score_matching_cpu", "gmm_cpu")]
    exe = tmp_path / "emulated"
    subprocess.run([gxx, *flags, *map(str, emulated_cuda_sources(tmp_path)),
                    str(ROOT / "tests/native/cuda_emulated.cpp"), *cpu, "-o", str(exe)],
                   check=True)
    # the binary checks that the chunk threads are chosen (by kernel and size) unless it
    # sets them
    env = {k: v for k, v in os.environ.items() if k != "SCOREKIT_CUDA_CHUNK_THREADS"}
    res = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=900,
                         env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


@pytest.mark.parametrize("cudart", [None, 11080], ids=["cuda13", "cuda11.8"])
def test_host_copies_in_kernel_parameters_under_emulation(tmp_path, cudart):
    """cuda/inline_copy.cuh under the emulation, built for the runtime the package is
    built with and for one older than 12.1 (4 KB of kernel parameters): every
    payload size and its edges copied, the rest refused, on the launch's grid and
    on one and three blocks; a driver's refusal of large payloads handled."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    emulated_cuda_sources(tmp_path)  # inline_copy.cuh with its launch rewritten
    exe = tmp_path / "inline_copy"
    version = [] if cudart is None else [f"-DCUDART_VERSION={cudart}"]
    subprocess.run([gxx, "-std=c++20", "-O1", "-pthread", *version, f"-I{tmp_path}",
                    f"-I{ROOT / 'tests/native/cuda_emulation'}", f"-I{ROOT / 'cuda'}",
                    f"-I{ROOT / 'cpp/include'}", str(ROOT / "tests/native/cuda_inline_copy.cpp"),
                    "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_chunk_threads_setting_comes_from_the_environment_and_is_checked():
    """SCOREKIT_CUDA_CHUNK_THREADS sets the row reductions' threads per chunk, read
    at first use ("8" or "32"; anything else: chosen); set_chunk_threads takes only
    0, 8 or 32. Which kernel each setting launches: the emulation test above."""
    if not _gpu.compiled():
        pytest.skip("the CUDA backend is not compiled")
    import sys
    code = "from scorekit import _gpu; print(_gpu._cuda.chunk_threads_setting())"
    for value, want in (("8", "8"), ("32", "32"), ("16", "0"), ("eight", "0"), ("08", "0"),
                        (" 32", "0"), ("8abc", "0"), ("", "0"), (None, "0")):
        env = {k: v for k, v in os.environ.items() if k != "SCOREKIT_CUDA_CHUNK_THREADS"}
        if value is not None:
            env["SCOREKIT_CUDA_CHUNK_THREADS"] = value
        res = subprocess.run([sys.executable, "-c", code], env=env, check=False,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.strip() == want, (value, res.stdout)
    before = _gpu._cuda.chunk_threads_setting()
    for bad in (-1, 1, 16, 64, 256):
        with pytest.raises(ValueError, match=f"0 \\(chosen per call\\), 8 or 32, got {bad}"):
            _gpu._cuda.set_chunk_threads(bad)
    assert _gpu._cuda.chunk_threads_setting() == before


def test_gpu_benchmark_sets_the_chunk_threads_for_its_call_only():
    """gpu_bench.py's forced rows: the setting holds during the call and is what it
    was before after it, also when the call raises."""
    if not _gpu.compiled():
        pytest.skip("the CUDA backend is not compiled")
    import importlib.util
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks/gpu_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cuda, seen = SimpleNamespace(type="cuda"), []

    def fn():
        seen.append(_gpu._cuda.chunk_threads_setting())
        if len(seen) == 2:
            raise RuntimeError("a failed call")
    assert bench.with_chunk_threads(fn, 8, SimpleNamespace(type="cpu")) is None
    before = _gpu._cuda.chunk_threads_setting()
    try:
        _gpu._cuda.set_chunk_threads(32)  # as SCOREKIT_CUDA_CHUNK_THREADS=32 would
        bench.with_chunk_threads(fn, 8, cuda)()
        assert _gpu._cuda.chunk_threads_setting() == 32
        _gpu._cuda.set_chunk_threads(0)
        with pytest.raises(RuntimeError, match="a failed call"):
            bench.with_chunk_threads(fn, 8, cuda)()
        assert seen == [8, 8] and _gpu._cuda.chunk_threads_setting() == 0
    finally:
        _gpu._cuda.set_chunk_threads(before)


def test_noisy_affine_step_reaches_its_launcher(backend, monkeypatch):
    monkeypatch.setattr(_gpu._CuPy, "empty", staticmethod(
        lambda like, shape, dtype: FakeCupyArray(shape=tuple(shape), ptr=1 << 26)))
    x, s = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 4), ptr=1 << 22)
    out = FakeCupyArray(shape=(3, 4), ptr=1 << 20)
    res = scorekit.noisy_affine_step(x, s, 1.5, -0.25, 0.5, seed=7, counter=2, offset=1, out=out)
    assert res.x is out and res.x_mean.__cuda_array_interface__["data"][0] == 1 << 26
    name, args = backend.calls[-1]
    # x, score, B, D, a, c, g (pointer, value), seed, counter, first sample, out, mean, itemsize
    assert name == "affine_step"
    assert args[:17] == (4096, 1 << 22, 3, 4, 0, 1.5, 0, -0.25, 0, 0.5, 7, 2, 1, 1 << 20, 1 << 26,
                         4, 0)
    with pytest.raises(ValueError, match="score must be a CUDA array"):
        scorekit.noisy_affine_step(x, np.ones((3, 4), np.float32), 1.0, 0.0, 0.0, seed=1)


def test_probes_reach_the_fill_and_sphere_launchers(alloc, backend):
    out = FakeCupyArray(shape=(3, 2, 5), ptr=1 << 20)
    assert scorekit.probes((3, 5), kind="sphere", seed=7, counter=2, num_probes=2, offset=4,
                           out=out) is out
    (fill, fargs), (sphere, sargs) = backend.calls[-2:]
    # normals for stream rows (offset + b) * K + k: from element offset * K * D
    assert fill == "fill_noise" and fargs[:7] == (0, 1 << 20, 30, 4, 7, 2, 4 * 2 * 5)
    assert sphere == "sphere_rows" and sargs[:3] == (1 << 20, 6, 5) and sargs[4] == 4
    scorekit.probes((3, 5), kind="rademacher", seed=7, out=FakeCupyArray(shape=(3, 5)))
    assert backend.calls[-1][0] == "fill_noise" and backend.calls[-1][1][0] == 2
    with pytest.raises(ValueError, match=r"out must have shape \(3, 2, 5\)"):
        scorekit.probes((3, 5), kind="gaussian", seed=7, num_probes=2, out=FakeCupyArray())


class FakeAllocation(FakeCupyArray):
    """An array the stand-in framework allocated: slicing and casting keep it; a fill
    is recorded."""

    def __init__(self, shape, dtype, ptr):
        super().__init__(shape=tuple(shape), typestr=np.dtype(dtype).str, ptr=ptr)
        self.dtype = np.dtype(dtype)
        self.filled = None

    def __getitem__(self, index):
        return self

    def __setitem__(self, index, value):
        self.filled = (index, value)


FakeAllocation.__module__ = "cupy._core.core"

@pytest.fixture
def alloc(backend, monkeypatch):
    """The stand-in CuPy allocates FakeAllocations at distinct addresses (recorded)."""
    made = []

    def empty(like, shape, dtype):
        made.append(FakeAllocation(shape, dtype, (1 << 30) + (len(made) << 20)))
        return made[-1]

    monkeypatch.setattr(_gpu._CuPy, "empty", staticmethod(empty))
    monkeypatch.setattr(_gpu._CuPy, "astype", staticmethod(lambda x, dtype: x))
    monkeypatch.setattr(_gpu._CuPy, "host", staticmethod(lambda x: np.zeros(x.shape, x.dtype)))
    return made


def ptr_of(a):
    return a.__cuda_array_interface__["data"][0]


def test_ssm_loss_reaches_its_launcher(alloc, backend):
    score, jvp = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 2, 4), ptr=1 << 22)
    loss, gs, gj = scorekit.ssm_loss(score, jvp, seed=7, counter=2, kind="sphere",
                                     variance_reduction=False, reduction="sum", offset=1)
    name, args = backend.calls[-1]
    # kind, score, jvp, B, K, D, variance_reduced, batch scale, seed, counter, first sample
    assert name == "ssm_loss" and args[:11] == (2, 4096, 1 << 22, 3, 2, 4, False, 1.0, 7, 2, 1)
    work = alloc[0]  # the launcher's work (ssm_work), then the 3 per-sample losses
    assert work.shape == (4 * 3 * 2 + 3 + 3,) and work.dtype == np.float64
    # work, per-sample losses, their typed copy (none for a sum), the gradients
    assert args[11:16] == (ptr_of(work), ptr_of(work) + 8 * 27, 0, ptr_of(gs), ptr_of(gj))
    assert gs.shape == (3, 4) and gj.shape == (3, 2, 4) and args[16:18] == (4, 0)
    assert loss == 0.0  # the sum of the (stand-in) row losses, on the host
    assert scorekit.ssm_loss(score, score, seed=1, return_grad=False, reduction="mean") == 0.0
    assert backend.calls[-1][1][4] == 1 and backend.calls[-1][1][7] == pytest.approx(1 / 3)
    assert backend.calls[-1][1][13:16] == (0, 0, 0)  # no typed losses, no gradients
    rows, _, _ = scorekit.ssm_loss(score, jvp, seed=7, reduction="none")
    assert backend.calls[-1][1][13] == ptr_of(rows) and rows.shape == (3,)
    assert rows.dtype == np.float32  # written by the kernel in score's dtype
    calls = len(backend.calls)
    with pytest.raises(ValueError, match=r"jvp must have score's shape \(3, 4\) or \(B, K\)"):
        scorekit.ssm_loss(score, FakeCupyArray(shape=(3, 5), ptr=1 << 22), seed=1)
    with pytest.raises(ValueError, match="jvp must be a CUDA array on score's device"):
        scorekit.ssm_loss(score, np.ones((3, 4), np.float32), seed=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        scorekit.ssm_loss(score, jvp, seed=1, kind="cube")
    with pytest.raises(TypeError, match="variance_reduction must be a bool"):
        scorekit.ssm_loss(score, jvp, seed=1, variance_reduction=1)
    assert len(backend.calls) == calls


def test_ism_loss_reaches_its_launcher(alloc, backend):
    score, trace = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3,), ptr=1 << 22)
    loss, gs, gt = scorekit.ism_loss(score, trace)
    name, args = backend.calls[-1]
    assert name == "ism_loss" and args[:5] == (4096, 1 << 22, 3, 4, pytest.approx(1 / 3))
    assert args[5:9] == (ptr_of(alloc[0]), ptr_of(alloc[0]), 0, ptr_of(gs)) and gt.shape == (3,)
    assert gt.filled == (Ellipsis, pytest.approx(1 / 3)) and gt.dtype == np.float32
    rows, _, _ = scorekit.ism_loss(score, trace, reduction="none")
    assert backend.calls[-1][1][7] == ptr_of(rows) and rows.shape == (3,)
    with pytest.raises(ValueError, match=r"jac_trace must have shape \(B,\) = \(3,\)"):
        scorekit.ism_loss(score, FakeCupyArray(shape=(4,), ptr=1 << 22))
    with pytest.raises(TypeError, match="jac_trace has dtype float64"):
        scorekit.ism_loss(score, FakeCupyArray(shape=(3,), typestr="<f8", ptr=1 << 22))


def test_a_calls_host_parameters_go_to_the_device_in_one_copy(alloc, backend):
    """perturb's sigma and scale, noisy_affine_step's a, c and g: one allocation and one
    upload per call, in the order of the parameters; a number stays a value, a CUDA
    parameter is read where it is."""
    x, s = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 4), ptr=1 << 22)
    sigma, scale = np.array([0.5, 1.0, 2.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    scorekit.perturb(x, sigma, seed=1, scale=scale)
    block, uploads = alloc[-1], backend.uploads[-1:]
    assert len(backend.uploads) == 1 and uploads[0][1] == ptr_of(block) and block.shape == (6,)
    assert np.array_equal(uploads[0][0], np.concatenate([scale, sigma]))
    args = backend.calls[-1][1]  # scale (pointer, value), then sigma
    assert args[3:7] == (ptr_of(block), 0.0, ptr_of(block) + 12, 0.0)
    a = np.array([0.5, 1.5, 2.5])  # float64 coefficients: cast to x's dtype
    g = FakeAllocation((3,), np.float32, 1 << 24)
    scorekit.noisy_affine_step(x, s, a, 0.25, a[::-1].copy(), seed=1)
    block = alloc[-1]
    assert len(backend.uploads) == 2 and backend.uploads[-1][1] == ptr_of(block)
    assert np.array_equal(backend.uploads[-1][0], np.concatenate([a, a[::-1]]).astype(np.float32))
    args = backend.calls[-1][1]  # a, c, g (pointer, value)
    assert args[4:10] == (ptr_of(block), 0.0, 0, 0.25, ptr_of(block) + 12, 0.0)
    scorekit.noisy_affine_step(x, s, a, 0.25, g, seed=1)  # g read where it is
    assert backend.calls[-1][1][8] == 1 << 24 and len(backend.uploads) == 3
    scorekit.perturb(x, 0.5, seed=1, scale=0.9)  # numbers: nothing to copy
    assert len(backend.uploads) == 3
    xa = _gpu.batch(x, "x")
    mixed = [(0, 0.0, np.ones(3, np.float32)), (0, 0.0, np.ones(3))]
    with pytest.raises(RuntimeError, match="internal error"):  # offsets assume x's dtype
        _gpu.device_params(mixed, xa)
    assert len(backend.uploads) == 3


def test_corrector_step_reaches_its_launcher(alloc, backend):
    x, s = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 4), ptr=1 << 22)
    alpha = np.array([0.5, 1.0, 2.0])  # float64, cast to x's dtype as on the CPU
    out, mean, step = scorekit.corrector_step(x, s, snr=0.16, alpha=alpha, seed=7, counter=2,
                                              offset=3, per_sample=True)
    name, args = backend.calls[-1]
    # x, score, B, D, snr, alpha (pointer, value), per sample, seed, counter, first sample
    assert name == "langevin_corrector"
    alpha_d = alloc[1]  # after out
    assert args[:11] == (4096, 1 << 22, 3, 4, 0.16, ptr_of(alpha_d), 0.0, True, 7, 2, 3)
    assert alpha_d.dtype == np.float32 and alpha_d.shape == (3,)  # in x's dtype
    host, dst, device, stream = backend.uploads[-1]  # copied there on x's stream
    assert dst == ptr_of(alpha_d) and (device, stream) == (0, 0)
    assert host.dtype == np.float32 and np.array_equal(host, alpha.astype(np.float32))
    assert args[11:14] == (ptr_of(out), ptr_of(mean), ptr_of(step)) and step.dtype == np.float64
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        scorekit.corrector_step(x, s, snr=0.1, alpha=-1.0, seed=1)
    with pytest.raises(ValueError, match="snr must be finite and >= 0"):
        scorekit.corrector_step(x, s, snr=-0.1, seed=1)
    with pytest.raises(TypeError, match="per_sample must be a bool"):
        scorekit.corrector_step(x, s, snr=0.1, seed=1, per_sample="yes")


def test_mala_steps_reach_their_launchers(alloc, backend):
    x, s = FakeCupyArray(shape=(3, 4)), FakeCupyArray(shape=(3, 4), ptr=1 << 22)
    p, sp = FakeCupyArray(shape=(3, 4), ptr=1 << 23), FakeCupyArray(shape=(3, 4), ptr=1 << 24)
    state = scorekit.mala_accept(x, s, [0.0, 1.0, 2.0], p, sp, np.zeros(3), 0.1, seed=7,
                                 counter=2, offset=5)
    name, args = backend.calls[-1]
    logp, logp_prop = alloc[0], alloc[1]  # host log-densities copied over as float64
    assert logp.dtype == logp_prop.dtype == np.float64
    # x, score, logp, proposal, score of the proposal, its logp, B, D, h, seed, counter, offset
    assert name == "mala_accept"
    assert args[:13] == (4096, 1 << 22, ptr_of(logp), 1 << 23, 1 << 24, ptr_of(logp_prop), 3, 4,
                         0, pytest.approx(0.1), 7, 2, 5)
    assert args[13:16] == (ptr_of(state.x), ptr_of(state.score), ptr_of(state.logp))
    assert args[16] == ptr_of(state.accepted) and state.accepted.dtype == np.uint8
    with pytest.raises(ValueError, match=r"logp must have shape \(B,\) = \(3,\)"):
        scorekit.mala_accept(x, s, [0.0], p, sp, np.zeros(3), 0.1, seed=1)
    with pytest.raises(ValueError, match=r"proposal must have shape \(3, 4\)"):
        scorekit.mala_accept(x, s, np.zeros(3), FakeCupyArray(shape=(3, 5), ptr=1 << 23), sp,
                             np.zeros(3), 0.1, seed=1)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        scorekit.mala_accept(x, s, np.zeros(3), p, sp, np.zeros(3), 0.0, seed=1)
    scorekit.mala_propose(x, s, 0.125, seed=7, counter=2, offset=5)
    name, args = backend.calls[-1]
    # the affine step (1, h, sqrt(2 h)) with the proposal's noise
    assert name == "affine_step"
    assert args[4:13] == (0, 1.0, 0, 0.125, 0, pytest.approx(0.5), 7, 2, 5)


def test_torch_stream_query_is_the_raw_one_only_where_it_agrees(monkeypatch):
    """PyTorch's private raw stream query is used where it gives the public query's
    handle at first use; absent, failing or disagreeing, the public one is."""
    torch = pytest.importorskip("torch")

    import contextlib
    current = {}  # device index -> handle of its current stream (0: the default stream)

    class Stream:
        made, on = 0, []

        def __init__(self, index):
            Stream.made += 1
            Stream.on.append(index)
            self.index, self.cuda_stream = index, 1000 * Stream.made + index

    @contextlib.contextmanager
    def stream(s):
        outer = current.get(s.index, 0)
        current[s.index] = s.cuda_stream
        try:
            yield
        finally:
            current[s.index] = outer

    class Current:
        def __init__(self, index):
            self.cuda_stream = current.get(index, 0)

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", stream)
    monkeypatch.setattr(torch.cuda, "current_stream", Current)

    def failing(index):
        raise RuntimeError("changed")

    def agreeing(index):
        return current.get(index, 0)

    def stream_id(index):  # agrees on the default stream only
        return 0

    for raw, used in [(agreeing, True), (lambda index: 7, False), (failing, False),
                      (lambda: 1, False), (stream_id, False), (None, False)]:
        monkeypatch.setattr(_gpu, "_RAW_STREAM", [])
        if raw is None:
            monkeypatch.delattr(torch._C, "_cuda_getCurrentRawStream", raising=False)
        else:
            monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", raw, raising=False)
        query = _gpu._torch_stream(3)
        assert (query is raw) == used
        assert Stream.on == [3]  # probed on the first call's device only
        Stream.on.clear()
        current[2] = 4242
        assert query(2) == 4242
        assert _gpu._torch_stream(2) is query and not Stream.on  # decided once


def test_host_overhead_script_runs():
    """benchmarks/host_overhead.py times the CUDA layer's Python side on the CPU."""
    pytest.importorskip("torch")
    import sys
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/host_overhead.py"),
                          "--repeats", "1", "--calls", "3"], check=False, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert len([line for line in res.stdout.splitlines() if line.endswith(" us")]) == 6


def test_gpu_timeline_script_runs_its_cases_on_the_cpu():
    """benchmarks/gpu_timeline.py --dry-run: every case once on CPU tensors."""
    pytest.importorskip("torch")
    import sys
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_timeline.py"), "--dry-run"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "dry run: 6 cases on the CPU" in res.stdout


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_benchmark_script_runs_its_cases_on_the_cpu(dtype):
    """benchmarks/gpu_bench.py --dry-run: every case, --more included, once on CPU
    tensors, so the script's own code is checked before a GPU runs it."""
    pytest.importorskip("torch")
    import sys
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_bench.py"), "--dry-run",
                          "--more", "--no-compile", "--dtype", dtype], check=False,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"dry run: 21 rows on the CPU, {dtype}" in res.stdout  # (--no-compile: no compiled rows)
