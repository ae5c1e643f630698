"""The `mersemi` command line. Every workflow rule is one call of a subcommand.

Subcommands live beside the code they drive; each module in COMMANDS has
`register(subparsers)` that adds its parser and sets `func(args) -> int | None`.
"""

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import InputError

COMMANDS = [
    "mersemi.commands",
    "mersemi.train.cli",
    "mersemi.demo",
    "mersemi.extract.cli",
    "mersemi.tiny.cli",
    "mersemi.report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mersemi", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mersemi {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.func(args) or 0
    except InputError as e:
        print(f"mersemi {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
