"""`python -m benchmarks.gpu_check ...`: see the package's docstring (docs/gpus.md)."""

import contextlib
import sys

from .harness import main

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
