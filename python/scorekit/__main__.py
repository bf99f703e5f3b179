"""Command line of scorekit.

``python -m scorekit demo``
    The main job: plain versus annealed Langevin dynamics on a two-mode
    Gaussian mixture with exact scores (Song & Ermon 2019, Figure 3); prints
    the fraction of samples in each mode and a timing against pure NumPy,
    and writes a figure. ``python -m scorekit demo --help`` lists the options.
``python -m scorekit bench``
    Times every kernel against a NumPy baseline (and, when torch can be
    imported, several against PyTorch eager; ``--no-torch`` skips that).
``python -m scorekit info``
    Prints how the package was built.
"""

from __future__ import annotations

import argparse
import sys


def _info(_argv) -> int:
    from . import build_info

    for key, value in build_info().items():
        print(f"{key:14s} {value}")
    return 0


def _demo(argv) -> int:
    from ._demo import main as demo_main

    demo_main(argv)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m scorekit")
    parser.add_argument("command", choices=("demo", "info", "bench"), help="what to run")
    args, rest = parser.parse_known_args(argv[:1])
    if args.command == "info":
        if argv[1:]:
            parser.error("info takes no arguments")
        return _info(argv[1:])
    if args.command == "demo":
        return _demo(argv[1:])
    from ._bench import main as bench_main

    return bench_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
