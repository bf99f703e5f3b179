#!/usr/bin/env bash
# The checks the CUDA backend needs on a GPU machine, in one run (repo root):
#   bash benchmarks/gpu_session.sh [OUTDIR]      (OUTDIR: default $OUT, else /tmp/scorekit-gpu)
# 1. builds scorekit with CUDA for the card (pip, no build isolation: the device
#    image has scikit-build-core, pybind11, CMake, ninja and nvcc);
# 2. runs the GPU tests (tests/test_cuda.py, and the host test that fails when
#    PyTorch sees a GPU that scorekit does not), the reductions' among them again
#    with eight threads a chunk, and tests/test_simd.py (the AVX-512 level runs
#    where the machine's CPU has it);
# 3. runs the GPU benchmark (benchmarks/gpu_bench.py) against PyTorch eager and
#    torch.compile, for benchmarks/RESULTS.md, again in windows of 20 calls for
#    the issue's three kernels, where a call's time goes between host and GPU
#    (benchmarks/gpu_timeline.py), the benchmark in float64 against eager only
#    (2^24 and 2^26), and the host side of the calls (benchmarks/gpu_profile.py
#    --host). SKIP_BENCH=1 skips step 3;
# 4. where Nsight Compute reads the hardware counters, the main kernels' SM and
#    DRAM throughput and issue rate at 2^26 (NCU=0 skips it).
# Each step's output goes to OUTDIR (device.txt, build.txt, simd.txt, tests.txt,
# bench.md, timeline.txt, bench64.md, host.txt, ncu.txt; build.txt and simd.txt
# are removed when they passed, their results being in device.txt).
# BUDGET (seconds, default 540) bounds the whole run: each step's time limit is cut
# to what is left, and a step is skipped when under 20 s remain, so one call of a
# lent machine's 10-minute limit always ends with its files. Steps in order of worth.
set -uo pipefail
out=${1:-${OUT:-/tmp/scorekit-gpu}}
mkdir -p "$out"
deadline=$(( $(date +%s) + ${BUDGET:-540} ))
# lim N: N seconds, or what is left before the deadline if less (0: skip the step)
lim() { local left=$(( deadline - $(date +%s) - 5 )); [ "$left" -lt 20 ] && left=0
        echo $(( $1 < left ? $1 : left )); }
step() { local t; t=$(lim "$1"); shift  # (a skipped step returns 125)
         if [ "$t" -gt 0 ]; then timeout "$t" "$@"; else echo "skipped (time): $*"; return 125; fi; }
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
py=${PYTHON:-python3}
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
export CUDACXX=${CUDACXX:-$(command -v nvcc)}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
  | tee "$out/device.txt"
arch=$($py -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}')")
echo "building for sm_$arch" | tee -a "$out/device.txt"
start=$(date +%s)
step 300 env SCOREKIT_CUDA=ON SKBUILD_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=$arch" \
  $py -m pip install --no-build-isolation --no-deps --no-cache-dir -q . > "$out/build.txt" 2>&1
status=$?
echo "build: exit $status after $(( $(date +%s) - start )) s" | tee -a "$out/device.txt"
[ $status -eq 0 ] || { tail -40 "$out/build.txt"; exit $status; }
$py -c "import scorekit; print(scorekit.build_info()); print('gpu_available', scorekit.gpu_available())" \
  | tee -a "$out/device.txt"

# pytest-xdist, where installed, spreads the tests over worker processes (one GPU).
xdist=$($py -c "import xdist" 2>/dev/null && echo yes)
par=${xdist:+-n 6 -p no:benchmark}

# the CPU's SIMD levels, AVX-512 included where this machine has it (CI's has not),
# on the CPU beside the GPU tests
simd_par=${xdist:+-n 4 -p no:benchmark}
step 90 $py -m pytest -q -p no:cacheprovider $simd_par tests/test_simd.py > "$out/simd.txt" 2>&1 &
simd=$!

# the host emulation test runs in CI; skip it here (it takes CPU time only).
step 200 $py -m pytest -q -rs --tb=short -p no:cacheprovider $par tests/test_cuda.py \
  "tests/test_cuda_host.py::test_a_visible_gpu_is_usable_when_the_backend_is_built" \
  2>&1 | tee "$out/tests.txt" | tail -40
# the reductions' tests again with eight threads a chunk (what large calls choose)
step 90 env SCOREKIT_CUDA_CHUNK_THREADS=8 $py -m pytest -q -rs --tb=short -p no:cacheprovider \
  $par tests/test_cuda.py -k "loss or corrector or mala or trace or probe or divergence or samplers" \
  2>&1 | tee -a "$out/tests.txt" | tail -5
wait $simd
simd_rc=$?
echo "simd tests: exit $simd_rc, $(tail -1 "$out/simd.txt")" | tee -a "$out/device.txt"

[ -n "${SKIP_BENCH:-}" ] || step 200 $py benchmarks/gpu_bench.py --markdown --repeats 10 --more 2>&1 | tee "$out/bench.md"
# the issue's three kernels in windows of 20 calls (the host's first call weighs less:
# nearer a training or sampling loop), then where a call's time goes at 2^24 and 2^26
[ -n "${SKIP_BENCH:-}" ] || step 60 $py benchmarks/gpu_bench.py --markdown --repeats 10 --calls 20 \
  --sizes 24,26 --only "perturb,langevin_step,dsm_loss + grad" >> "$out/bench.md" 2>&1
[ -n "${SKIP_BENCH:-}" ] || step 40 $py benchmarks/gpu_timeline.py > "$out/timeline.txt" 2>&1

# issue rate against memory traffic: whether perturb and dsm_loss are bound by their
# instructions (the noise's arithmetic) or by memory (no counters on some VMs: then
# ncu.txt says so and nothing else changes)
if [ "${NCU:-1}" != 0 ] && command -v ncu >/dev/null 2>&1; then
  step 75 ncu --clock-control none -k regex:"fill_kernel|noisy_rows|chunk_sums" \
    --metrics sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.per_cycle_active,smsp__inst_executed.sum,gpu__time_duration.sum \
    $py benchmarks/gpu_profile.py --log2 26 --calls 1 > "$out/ncu.txt" 2>&1
  echo "ncu: exit $? ($(grep -c 'gpu__time_duration' "$out/ncu.txt") kernels measured)" | tee -a "$out/device.txt"
fi

[ -n "${SKIP_BENCH:-}" ] || step 60 $py benchmarks/gpu_bench.py --markdown --repeats 5 --dtype float64 \
  --sizes 24,26 --no-compile > "$out/bench64.md" 2>&1
# the host-side time of a call (small arrays: the Python work and the launches)
[ -n "${SKIP_BENCH:-}" ] || step 60 $py benchmarks/gpu_profile.py --host --log2 16 > "$out/host.txt" 2>&1
head -5 "$out/host.txt" 2>/dev/null
# (a lent machine returns at most 8 files: the passed steps' logs go)
grep -q "build: exit 0" "$out/device.txt" && rm -f "$out/build.txt"
[ "$simd_rc" -eq 0 ] && rm -f "$out/simd.txt"
echo "session: $(( ${BUDGET:-540} - (deadline - $(date +%s)) )) s" | tee -a "$out/device.txt"
