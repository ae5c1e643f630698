"""Stage 'visual' (work in progress)."""

from dataclasses import dataclass

from .common import StageParams

HELP = "visual stage (not implemented yet)"


@dataclass
class Params(StageParams):
    pass


def run(args, params) -> None:
    raise NotImplementedError("extract visual: not implemented yet")
