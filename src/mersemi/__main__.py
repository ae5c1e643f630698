"""`python -m mersemi ...`: how workflow rules call the CLI (works in conda envs too)."""

import sys

from .cli import main

sys.exit(main())
