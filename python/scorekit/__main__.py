"""Command line: ``python -m scorekit info`` and ``python -m scorekit bench``."""

from __future__ import annotations

import argparse
import sys


def _info(_argv) -> int:
    from . import build_info

    for key, value in build_info().items():
        print(f"{key:14s} {value}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m scorekit")
    parser.add_argument("command", choices=("info", "bench"), help="what to run")
    args, rest = parser.parse_known_args(argv[:1])
    if args.command == "info":
        if argv[1:]:
            parser.error("info takes no arguments")
        return _info(argv[1:])
    from ._bench import main as bench_main

    return bench_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
