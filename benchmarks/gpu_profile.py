"""Runs each of scorekit's main CUDA kernels a few times on one size, for a profiler:

    ncu --clock-control none -k regex:"fill_kernel|noisy_rows|chunk_sums" \\
        python benchmarks/gpu_profile.py [--log2 26] [--calls 2]

float32, B = 1024 rows; normal, perturb, langevin_step and dsm_loss (noise
regenerated, with its gradient), the cases of benchmarks/gpu_bench.py.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2", type=int, default=26, help="log2 of the element count")
    parser.add_argument("--calls", type=int, default=2, help="calls of each kernel")
    args = parser.parse_args(argv)

    import numpy as np
    import scorekit
    import torch
    if not (scorekit.gpu_available() and torch.cuda.is_available()):
        print("needs a CUDA build of scorekit, a GPU and PyTorch with CUDA")
        return 2
    n = 1 << args.log2
    B = 1024
    x = torch.randn(B, n // B, device="cuda")
    score = torch.randn_like(x)
    out = torch.empty_like(x)
    sigma = np.linspace(0.1, 1.0, B, dtype=np.float32)
    for _ in range(args.calls):
        scorekit.normal(n, seed=1, counter=2, out=out.view(-1))
        scorekit.perturb(x, sigma, seed=1, counter=2, out=out)
        scorekit.langevin_step(x, score, 1e-3, seed=1, counter=2, out=out)
        scorekit.dsm_loss(score, sigma, seed=1, counter=2, reduction="none")
    torch.cuda.synchronize()
    print(f"ran {args.calls} calls of 4 kernels on 2^{args.log2} float32 elements")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
