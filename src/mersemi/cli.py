"""The `mersemi` command line. Every workflow rule is one call of a subcommand.

Subcommands live beside the code they drive; each module in COMMANDS has
`register(subparsers)` that adds its parser(s) and sets `func(args) -> int | None`.
"""

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import InputError, report_error

# Subcommand -> the module that registers it. Only the module of the command being run is
# imported, so `mersemi extract audio` does not pay for importing torch or OpenCV.
COMMANDS = {
    "manifest": "mersemi.commands",
    "synth": "mersemi.demo.synth_cli",
    "store": "mersemi.commands",
    "features": "mersemi.commands",
    "demo": "mersemi.demo.videos",
    "models": "mersemi.demo.tiny.cli",
    "extract": "mersemi.extract.cli",
    "check-models": "mersemi.checkmodels",
    "train": "mersemi.train.cli",
    "report": "mersemi.report.page",
    "plots": "mersemi.report.plots",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mersemi", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mersemi {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = next((a for a in argv or [] if not a.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for module in dict.fromkeys(modules):
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.func(args) or 0
    except (InputError, OSError) as e:
        code = report_error(e, f"mersemi {args.command}")
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
