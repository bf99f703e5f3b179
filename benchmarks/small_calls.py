"""Per-call cost of scorekit on tiny arrays, against NumPy ufunc calls.

    python benchmarks/small_calls.py [--elements 10] [--markdown]

Each row times one public call on a (2, 5) float32 array (10 elements; the
noise functions draw 10 values) and ``numpy.add(x, x)`` on the same data,
interleaved in the same rounds, and reports medians of many calls per round
and the cost in "ufunc calls" (scorekit median / numpy.add median). The
``_core`` rows call the compiled function directly with the arguments the
Python layer would pass: the difference is the Python layer's checks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit

import numpy as np

import scorekit
from scorekit import _core


def cases(n: int) -> dict:
    x = np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape(2, -1)
    out = np.empty_like(x)
    one, half = np.array(1.0, np.float32), np.array(0.5, np.float32)
    loss = np.empty(2, np.float64)
    return {
        "numpy.add(x, x)": lambda: np.add(x, x),
        "normal(n)": lambda: scorekit.normal(n, seed=1, counter=2),
        "perturb(x, 0.5)": lambda: scorekit.perturb(x, 0.5, seed=1, counter=2),
        "perturb(x, 0.5, out=)": lambda: scorekit.perturb(x, 0.5, seed=1, counter=2, out=out),
        "langevin_step(x, x, 0.1)": lambda: scorekit.langevin_step(x, x, 0.1, seed=1, counter=2),
        "dsm_loss(x, 0.5)": lambda: scorekit.dsm_loss(x, 0.5, seed=1, counter=2),
        "_core.normal": lambda: _core.normal(out, 1, 2, 0),
        "_core.perturb": lambda: _core.perturb(x, one, half, 1, 2, 0, out),
        "_core.dsm_loss": lambda: _core.dsm_loss(x, None, half, None, 0.5, 1, 2, 0, loss, None),
    }


def measure(calls: dict, rounds: int = 15, number: int = 20000) -> dict:
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():  # interleaved: every case once per round
            times[name].append(timeit.timeit(fn, number=number) / number)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=10)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    med = measure(cases(args.elements))
    base = med["numpy.add(x, x)"]
    print(f"scorekit {scorekit.__version__}, numpy {np.__version__}, {args.elements} elements, "
          f"medians of 15 rounds x 20000 calls")
    sep = "|" if args.markdown else " "
    if args.markdown:
        print("| call | median | numpy.add calls |\n|:---|---:|---:|")
    for name, t in med.items():
        cells = [name, f"{t * 1e6:.2f} us", f"{t / base:.1f}"]
        print(f"| {' | '.join(cells)} |" if args.markdown else sep.join(f"{c:<28}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
