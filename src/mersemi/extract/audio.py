"""Stage 'audio' (work in progress)."""

from dataclasses import dataclass

from .common import StageParams

HELP = "audio stage (not implemented yet)"


@dataclass
class Params(StageParams):
    pass


def run(args, params) -> None:
    raise NotImplementedError("extract audio: not implemented yet")
