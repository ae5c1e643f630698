"""Stage 'faces' (work in progress)."""

from dataclasses import dataclass

from .common import StageParams

HELP = "faces stage (not implemented yet)"


@dataclass
class Params(StageParams):
    pass


def run(args, params) -> None:
    raise NotImplementedError("extract faces: not implemented yet")
