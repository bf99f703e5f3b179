"""python -m scorekit info / bench."""

import json
import subprocess
import sys

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
