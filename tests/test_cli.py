"""python -m scorekit info / bench."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import scorekit
from scorekit import _bench


def test_info_prints_build_info():
    res = subprocess.run([sys.executable, "-m", "scorekit", "info"], capture_output=True, text=True,
                         check=True)
    info = scorekit.build_info()
    for key in ("version", "compiler", "simd", "openmp", "cuda_compiled", "gpu_available"):
        assert key in info
        assert key in res.stdout
    assert info["version"] == scorekit.__version__
    assert info["num_threads"] == scorekit.get_num_threads()


def test_unknown_command_fails():
    res = subprocess.run([sys.executable, "-m", "scorekit", "frobnicate"], capture_output=True,
                         text=True)
    assert res.returncode != 0
    assert "invalid choice" in res.stderr


@pytest.mark.parametrize("where", ["missing-dir/r.json", "."])
def test_bench_json_path_is_checked_before_the_run(where, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_bench, "run", lambda *a, **k: pytest.fail("ran with a bad --json"))
    with pytest.raises(SystemExit) as err:
        _bench.main(["--quick", "--json", str(tmp_path / where)])
    assert err.value.code == 2
    assert "--json" in capsys.readouterr().err


def test_bench_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    rc = _bench.main(["--sizes", "2000", "--dtype", "float32", "--kernels", "normal,dsm_loss",
                      "--threads", "1", "--json", str(path), "--progress", "never"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "normal" in out and "dsm_loss" in out and "copy bandwidth" in out
    data = json.loads(path.read_text())
    rows = data["rows"]
    assert {r["kernel"] for r in rows} == {"normal", "dsm_loss"}
    for r in rows:
        assert r["n"] == 2000 and r["threads"] == 1
        assert r["speedup"] > 0


TORCH_KERNELS = {"normal", "uniform", "rademacher", "perturb", "dsm_loss", "langevin_step"}


def _table(out):
    """Header and data rows of the printed table, split into cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("kernel "))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return re.split(r"\s{2,}", lines[start].strip()), rows


def test_importing_scorekit_does_not_import_torch():
    code = "import sys, scorekit, scorekit._bench; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_bench_torch_column(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch_threads = torch.get_num_threads()
    path = tmp_path / "bench.json"
    rc = _bench.main(["--quick", "--sizes", "2000", "--kernels", "normal,perturb,dsm_loss,ism_loss",
                      "--threads", "1", "--json", str(path), "--progress", "never"])
    assert rc == 0
    assert torch.get_num_threads() == torch_threads
    out = capsys.readouterr().out
    assert f"torch: {torch.__version__} (" in out
    assert "scorekit, NumPy and PyTorch alternate" in out
    header, cells = _table(out)
    col = header.index("vs torch")
    shown = {c[0]: c[col] for c in cells}
    assert shown["ism_loss"] == "-"
    for name in ("normal", "perturb", "dsm_loss"):
        assert re.fullmatch(r"\d+\.\d\dx", shown[name]), shown
    data = json.loads(path.read_text())
    assert data["config"]["torch"] is True
    assert data["machine"]["torch_version"] == torch.__version__
    assert data["machine"]["torch_default_threads"] == torch_threads
    for r in data["rows"]:
        if r["kernel"] == "ism_loss":
            assert r["torch_median"] is r["torch_rate"] is r["speedup_torch"] is None
            continue
        assert r["torch_median"] > 0
        assert r["torch_rate"] == pytest.approx(r["n"] / r["torch_median"])
        assert r["speedup_torch"] == pytest.approx(r["torch_median"] / r["scorekit_median_s"])


@pytest.mark.parametrize("how", ["--no-torch", "torch not importable"])
def test_bench_without_torch(how, tmp_path, capsys, monkeypatch):
    argv = ["--quick", "--sizes", "2000", "--kernels", "normal,dsm_loss", "--threads", "1",
            "--json", str(tmp_path / "bench.json"), "--progress", "never"]
    if how == "--no-torch":
        argv.append("--no-torch")
    else:
        monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert _bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "torch:" not in out and "PyTorch" not in out
    header, cells = _table(out)
    col = header.index("vs torch")
    assert [c[col] for c in cells] == ["-", "-"]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["config"]["torch"] is False
    assert data["machine"]["torch_version"] is None
    for r in data["rows"]:
        assert r["torch_median"] is r["torch_rate"] is r["speedup_torch"] is None
        assert r["speedup"] > 0


def test_time_interleaved_many_calls_each_once_per_round():
    calls = [0, 0, 0]
    fns = [lambda i=i: calls.__setitem__(i, calls[i] + 1) for i in range(3)]
    policy = _bench.TimingPolicy(target_s=1e-3, min_reps=7, max_reps=7)
    samples = _bench.time_interleaved_many(fns, policy)
    assert calls == [8, 8, 8]  # one sizing call each, then 7 rounds
    assert [s.shape for s in samples] == [(7,)] * 3
    assert all((s >= 0).all() for s in samples)


class _FixedNoise:
    """Stands in for numpy.random.default_rng(seed): standard_normal returns stored noise."""

    def __init__(self, noise):
        self.noise = noise

    def standard_normal(self, shape, dtype):
        assert tuple(shape) == self.noise.shape and np.dtype(dtype) == self.noise.dtype
        return self.noise.copy()


def test_torch_baselines_match_numpy(dtype, monkeypatch):
    torch = pytest.importorskip("torch")
    assert {k.name for k in _bench.KERNELS if k.torch is not None} == TORCH_KERNELS
    inp = _bench.Inputs(600, dtype)  # (24, 25)
    assert inp.shape == (24, 25)
    _ = inp.x, inp.score, inp.sigma, inp.scale, inp.z
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    # dsm_loss reads the stored noise: loss and gradient are deterministic.
    loss_np, grad_np = _bench._np_dsm_loss(inp)()
    loss_t, grad_t = _bench._torch_dsm_loss(torch, inp)()
    assert grad_t.dtype == getattr(torch, dtype.name)
    np.testing.assert_allclose(loss_t.item(), loss_np, rtol=rtol)
    np.testing.assert_allclose(grad_t.numpy(), grad_np, rtol=rtol, atol=0)

    # perturb and langevin_step with the same noise on both sides.
    noise = np.random.default_rng(3).standard_normal(inp.shape).astype(dtype)
    monkeypatch.setattr(np.random, "default_rng", lambda *a, **k: _FixedNoise(noise))

    def fixed_randn_like(x, generator=None):
        assert isinstance(generator, torch.Generator) and tuple(x.shape) == noise.shape
        return torch.from_numpy(noise.copy())

    monkeypatch.setattr(torch, "randn_like", fixed_randn_like)
    for name in ("perturb", "langevin_step"):
        kernel = next(k for k in _bench.KERNELS if k.name == name)
        expected = kernel.numpy(inp)()
        got = kernel.torch(torch, inp)()
        assert got.dtype == getattr(torch, dtype.name)
        np.testing.assert_allclose(got.numpy(), expected, rtol=rtol, atol=rtol, err_msg=name)
    monkeypatch.undo()

    # The noise kernels: shape, dtype and range of what NumPy returns.
    for name in ("normal", "uniform", "rademacher"):
        kernel = next(k for k in _bench.KERNELS if k.name == name)
        expected = kernel.numpy(inp)()
        got = kernel.torch(torch, inp)().numpy()
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
    assert set(np.unique(_bench._torch_rademacher(torch, inp)().numpy())) == {-1.0, 1.0}
    u = _bench._torch_fill("rand")(torch, inp)().numpy()
    assert (u >= 0).all() and (u < 1).all()
    g = _bench._torch_fill("randn")(torch, inp)().numpy()
    assert abs(g.mean()) < 0.2 and 0.8 < g.std() < 1.2
