"""Where the time of a CUDA call goes: the host's enqueue time and the GPU's own time.

    python benchmarks/gpu_timeline.py [--sizes 24,26] [--calls 20] [--dry-run]

For perturb, langevin_step and dsm_loss (float32, B = 1024 rows), with their
per-sample parameters as host arrays, as numbers or (dsm_loss) as a CUDA tensor
within ``device_value_checks(False)``, and PyTorch's device-to-device copy for
scale; microseconds per call:

- back to back: ``--calls`` calls between two CUDA events (median of 5);
- host enqueue: the wall-clock time of enqueuing the same calls behind a sleep
  kernel of about 30 ms, so that the GPU is busy throughout and the host never
  waits for it (median of 3);
- GPU only: the time between events recorded around those calls, which the GPU
  then runs one after another with no gap (median of 3).

Where host enqueue exceeds GPU only, calls back to back are paced by the host.
``--dry-run`` runs every case once on PyTorch CPU tensors (no timings): it
checks the script without a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from gpu_bench import OnNumPy, event_time, unchecked_dsm

SLEEP_CYCLES = 60_000_000  # about 30 ms at 2 GHz


def cases(sk, torch, k: int, dev):
    """name -> call, for 2^k float32 elements as (1024, D) batches on dev."""
    import numpy as np
    B = 1024
    D = (1 << k) // B
    x = torch.randn(B, D, device=dev)
    score = torch.randn(B, D, device=dev)
    out = torch.empty_like(x)
    sigma = torch.rand(B, device=dev) + 0.1
    sigma_h = sigma.cpu().numpy()
    scale_h = (torch.rand(B) + 0.5).numpy()
    step_h = np.full(B, 1e-3, np.float32)

    return {
        "perturb, host sigma and scale":
            lambda: sk.perturb(x, sigma_h, seed=1, counter=2, scale=scale_h, out=out),
        "perturb, numbers": lambda: sk.perturb(x, 0.5, seed=1, counter=2, scale=0.9, out=out),
        "langevin_step, host step":
            lambda: sk.langevin_step(x, score, step_h, seed=1, counter=2, out=out),
        "dsm_loss, host sigma":
            lambda: sk.dsm_loss(score, sigma_h, seed=1, counter=2, reduction="none"),
        "dsm_loss, CUDA sigma unchecked": unchecked_dsm(sk, score, sigma),
        "torch copy_": lambda: out.copy_(x),
    }


def timeline(fn, calls: int, torch) -> tuple[float, float, float, bool]:
    """(back to back, host enqueue, GPU only) in us per call, and whether the sleep
    outlasted the host's enqueuing (else GPU only includes host time)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    back = [event_time(torch, fn, calls) * 1e6 for _ in range(5)]
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    host, gpu, covered = [], [], True
    for _ in range(3):
        s0, s1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s0.record()
        torch.cuda._sleep(SLEEP_CYCLES)
        s1.record()
        e0.record()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        enqueue = time.perf_counter() - t0
        e1.record()
        e1.synchronize()
        covered &= enqueue * 1e3 < s0.elapsed_time(s1)
        host.append(enqueue * 1e6 / calls)
        gpu.append(e0.elapsed_time(e1) * 1e3 / calls)
    return statistics.median(back), statistics.median(host), statistics.median(gpu), covered


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,26", help="log2 of the element counts")
    parser.add_argument("--calls", type=int, default=20, help="calls per timing")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every case once on the CPU (no timings)")
    args = parser.parse_args(argv)

    import torch

    import scorekit
    if args.dry_run:
        runs = cases(OnNumPy(scorekit, torch), torch, 12, torch.device("cpu"))
        for fn in runs.values():
            fn()
        print(f"dry run: {len(runs)} cases on the CPU")
        return 0
    if not scorekit.gpu_available() or not torch.cuda.is_available():
        print("needs a CUDA build of scorekit, a GPU and PyTorch with CUDA")
        return 2
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(dev)}; {args.calls} calls a timing; "
          "us per call: back to back | behind a sleep: host enqueue, GPU only")
    for k in (int(v) for v in args.sizes.split(",")):
        for name, fn in cases(scorekit, torch, k, dev).items():
            back, host, gpu, covered = timeline(fn, args.calls, torch)
            note = "" if covered else "  (the sleep ended first: GPU only includes host time)"
            print(f"2^{k} {name:32s} {back:8.1f} | {host:8.1f} {gpu:8.1f}{note}", flush=True)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
