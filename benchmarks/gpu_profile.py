"""Runs each of scorekit's main CUDA kernels a few times on one size, for a profiler:

    ncu --clock-control none -k regex:"fill_kernel|noisy_rows|chunk_sums" \\
        python benchmarks/gpu_profile.py [--log2 26] [--calls 2]

float32, B = 1024 rows; normal, perturb, langevin_step and dsm_loss (noise
regenerated, with its gradient), the cases of benchmarks/gpu_bench.py.

    python benchmarks/gpu_profile.py --host [--log2 16]

measures the host side instead: the host time of a call (enqueued back to back,
no synchronisation) for each case, and the Python functions that take it
(dsm_loss also with sigma as a CUDA tensor, checked on the host, which waits,
and within ``scorekit.device_value_checks(False)``).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2", type=int, default=26, help="log2 of the element count")
    parser.add_argument("--calls", type=int, default=2, help="calls of each kernel")
    parser.add_argument("--host", action="store_true", help="time the host side of the calls")
    args = parser.parse_args(argv)

    import numpy as np
    import scorekit
    import torch
    from gpu_bench import unchecked_dsm
    if not (scorekit.gpu_available() and torch.cuda.is_available()):
        print("needs a CUDA build of scorekit, a GPU and PyTorch with CUDA")
        return 2
    n = 1 << args.log2
    B = 1024
    x = torch.randn(B, n // B, device="cuda")
    score = torch.randn_like(x)
    out = torch.empty_like(x)
    sigma = np.linspace(0.1, 1.0, B, dtype=np.float32)
    sigma_d = torch.from_numpy(sigma).cuda()

    cases = {
        "normal": lambda: scorekit.normal(n, seed=1, counter=2, out=out.view(-1)),
        "perturb": lambda: scorekit.perturb(x, sigma, seed=1, counter=2, out=out),
        "perturb, scalar sigma": lambda: scorekit.perturb(x, 0.5, seed=1, counter=2, out=out),
        "langevin_step": lambda: scorekit.langevin_step(x, score, 1e-3, seed=1, counter=2,
                                                        out=out),
        "dsm_loss": lambda: scorekit.dsm_loss(score, sigma, seed=1, counter=2, reduction="none"),
        "dsm_loss, CUDA sigma": lambda: scorekit.dsm_loss(score, sigma_d, seed=1, counter=2,
                                                          reduction="none"),
        "dsm_loss, CUDA sigma unchecked": unchecked_dsm(scorekit, score, sigma_d),
    }
    if not args.host:
        for _ in range(args.calls):
            for name in ("normal", "perturb", "langevin_step", "dsm_loss"):
                cases[name]()
        torch.cuda.synchronize()
        print(f"ran {args.calls} calls of 4 kernels on 2^{args.log2} float32 elements")
        return 0

    import cProfile
    import pstats
    import time
    calls = max(args.calls, 200)
    for name, fn in cases.items():
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        host = time.perf_counter() - t0
        torch.cuda.synchronize()
        total = time.perf_counter() - t0
        print(f"{name:32s} host {host / calls * 1e6:7.1f} us/call, with the GPU "
              f"{total / calls * 1e6:7.1f} us/call (2^{args.log2} elements)")
    for name in ("perturb", "dsm_loss"):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            cases[name]()
        prof.disable()
        torch.cuda.synchronize()
        print(f"--- {name}: {calls} calls, by own time")
        pstats.Stats(prof).sort_stats("tottime").print_stats(14)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
