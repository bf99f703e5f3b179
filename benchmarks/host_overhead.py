"""Host cost of scorekit's CUDA calls, measured without a GPU.

    python benchmarks/host_overhead.py [--package DIR] [--repeats 7] [--calls 1500]

PyTorch CPU tensors pose as CUDA tensors and the CUDA launchers do nothing, so
what is timed is the Python layer of a CUDA call (argument checks, per-sample
parameters, allocations through PyTorch, the launcher's arguments), less the
CUDA runtime's own calls (the kernel launch, the host-to-device copy, the stream
query) and with CPU allocations in place of CUDA ones. Each case prints the
best of ``--repeats`` means of ``--calls`` calls, in microseconds.

``--package DIR`` imports the scorekit package found in DIR (its compiled
modules beside it) instead of the installed one: to compare two versions of
the Python layer, run this on each in alternation and compare medians.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", help="a directory holding the scorekit package to time")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1500)
    args = parser.parse_args(argv)
    if args.package:
        sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
        sys.path.insert(0, args.package)
    import numpy as np
    import torch

    import scorekit
    from scorekit import _gpu

    class NoLaunch:
        """The CUDA module with one device, whose launchers and copies do nothing."""

        def device_count(self):
            return 1

        def __getattr__(self, name):
            if name.endswith("_work"):
                return lambda *a: 0
            return lambda *a, **k: None

    _gpu._cuda = NoLaunch()
    _gpu.on_cuda = lambda value, name: isinstance(value, torch.Tensor)
    _gpu._Torch.stream = staticmethod(lambda x: 0)

    B, D = 1024, 64
    x, s = torch.zeros(B, D), torch.zeros(B, D)
    out = torch.empty_like(x)
    h = np.linspace(0.1, 1.0, B, dtype=np.float32)
    h2, h3 = h[::-1].copy(), h * np.float32(0.5)
    cases = {
        "perturb, host sigma and scale":
            lambda: scorekit.perturb(x, h, seed=1, counter=2, scale=h2, out=out),
        "perturb, numbers": lambda: scorekit.perturb(x, 0.5, seed=1, counter=2, scale=0.9,
                                                     out=out),
        "langevin_step, host step":
            lambda: scorekit.langevin_step(x, s, h, seed=1, counter=2, out=out),
        "noisy_affine_step, host a, c, g":
            lambda: scorekit.noisy_affine_step(x, s, h, h2, h3, seed=1, counter=2, out=out),
        "dsm_loss, host sigma":
            lambda: scorekit.dsm_loss(s, h, seed=1, counter=2, reduction="none"),
        "dsm_loss, host sigma and weight":
            lambda: scorekit.dsm_loss(s, h, seed=1, counter=2, weight=h2, reduction="none"),
    }
    print(f"scorekit from {scorekit.__file__}; B = {B}, D = {D}, float32")
    for name, fn in cases.items():
        for _ in range(300):
            fn()
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.calls):
                fn()
            best = min(best, (time.perf_counter() - start) / args.calls)
        print(f"{name:34s} {best * 1e6:7.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
