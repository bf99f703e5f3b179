"""The CPU backend gives the same bits when built for another architecture.

tests/native/noise_digest.cpp hashes the noise of every kind and the fused
kernels (ragged sizes, offsets, a block counter past 2**32). It is built here
for the host (every instruction-set level it supports) and, where an aarch64
cross compiler and qemu-aarch64 are installed, for aarch64 and run under the
emulator; all digests must agree. tests/native/vector_widths.cpp runs the
vector noise code at 4, 8 and 16 lanes with a portable multiply (the 16 lanes
of the AVX-512 path included, on any CPU) against the scalar functors, and
tests/native/avx512_emulated.cpp runs cpp/src/simd_avx512.cpp itself, compiled
against emulated AVX-512 intrinsics (tests/native/avx512_emulation/), against
them too.
"""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["threads", "simd", "noise_cpu", "elementwise_cpu", "dsm_cpu"]
FLAGS = ["-std=c++17", "-O2", "-fopenmp", "-ffp-contract=off", "-fno-fast-math",
         "-fno-math-errno", f"-I{ROOT / 'cpp/include'}", f"-I{ROOT / 'cpp/src'}"]


def build(compiler, out, extra=(), paths=()):
    """Links the digest program; `paths` are (source, flags) of the instruction-set files."""
    objs = []
    for src, flags in paths:
        obj = out.with_name(f"{out.name}_{Path(src).stem}.o")
        subprocess.run([compiler, *FLAGS, *flags, "-c", str(ROOT / src), "-o", str(obj)],
                       check=True)
        objs.append(str(obj))
    srcs = [str(ROOT / f"cpp/src/{s}.cpp") for s in SOURCES]
    srcs.append(str(ROOT / "tests/native/noise_digest.cpp"))
    subprocess.run([compiler, *FLAGS, *extra, *srcs, *objs, "-o", str(out)], check=True)
    return out


def digest(cmd):
    level, *hashes = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                    timeout=300).stdout.split()
    return level, tuple(hashes)


@pytest.fixture(scope="module")
def host_digests(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    out = tmp_path_factory.mktemp("digest") / "host"
    paths, defs = [], []
    if platform.machine() in ("x86_64", "AMD64"):
        defs = ["-DSCOREKIT_HAVE_AVX2_PATH=1", "-DSCOREKIT_HAVE_AVX512_PATH=1"]
        paths = [("cpp/src/simd_avx2.cpp", [*defs, "-mavx2", "-Wno-psabi"]),
                 ("cpp/src/simd_avx512.cpp", [*defs, "-mavx512f", "-mavx512dq", "-mavx512bw",
                                              "-mavx512vl", "-Wno-psabi"])]
    exe = build(gxx, out, defs, paths)
    found = {}
    for name in ("scalar", "avx2", "avx512"):
        level, hashes = digest([str(exe), name])
        found[level] = hashes  # a level the CPU lacks runs as the best below it
    return found


def test_every_host_level_gives_the_same_bits(host_digests):
    assert "scalar" in host_digests
    assert len(set(host_digests.values())) == 1, host_digests


def test_aarch64_build_gives_the_same_bits(host_digests, tmp_path):
    cross, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    if cross is None or qemu is None:
        pytest.skip("needs aarch64-linux-gnu-g++ and qemu-aarch64")
    exe = build(cross, tmp_path / "aarch64", ["-static"])
    level, hashes = digest([qemu, str(exe)])
    assert level == "scalar"
    assert hashes == host_digests["scalar"]


VECTOR_FLAGS = ["-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno",
                "-Wno-psabi", f"-I{ROOT / 'cpp/include'}", f"-I{ROOT / 'cpp/src'}"]


def run_vector_widths(compiler, out, runner=()):
    subprocess.run([compiler, *VECTOR_FLAGS, *(("-static",) if runner else ()),
                    str(ROOT / "tests/native/vector_widths.cpp"), "-o", str(out)], check=True)
    res = subprocess.run([*runner, str(out)], check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_every_vector_width_gives_the_scalar_bits(tmp_path):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found")
    run_vector_widths(gxx, tmp_path / "widths")


def test_every_vector_width_on_aarch64(tmp_path):
    cross, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    if cross is None or qemu is None:
        pytest.skip("needs aarch64-linux-gnu-g++ and qemu-aarch64")
    run_vector_widths(cross, tmp_path / "widths", (qemu,))


def test_avx512_file_with_emulated_intrinsics_gives_the_scalar_bits(tmp_path):
    """The AVX-512 path's own code, its multiply included, on a CPU without AVX-512."""
    gxx = shutil.which("g++")
    if gxx is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs g++ on x86-64")
    defs = ["-DSCOREKIT_HAVE_AVX512_PATH=1", "-D__AVX512F__", "-D__AVX512DQ__", "-D__AVX512BW__",
            "-D__AVX512VL__", f"-I{ROOT / 'tests/native/avx512_emulation'}"]
    obj = tmp_path / "avx512.o"
    subprocess.run([gxx, *VECTOR_FLAGS, *defs, "-c", str(ROOT / "cpp/src/simd_avx512.cpp"), "-o",
                    str(obj)], check=True)
    exe = tmp_path / "emulated"
    subprocess.run([gxx, *VECTOR_FLAGS, *defs, str(ROOT / "tests/native/avx512_emulated.cpp"),
                    str(obj), "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr
