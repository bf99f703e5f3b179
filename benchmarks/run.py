"""Run the scorekit benchmark: ``python benchmarks/run.py [--quick] [--markdown] ...``.

All options are those of ``python -m scorekit bench`` (see ``--help``).
"""

import sys

from scorekit._bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
