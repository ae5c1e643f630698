"""`mersemi extract <stage> --shard SHARD_CSV --out OUT [--params JSON] [stage flags]`.

A stage is a package whose `__init__` is its spec (a command outside STAGES, a module):
  HELP: str                       one line for `mersemi extract --help`
  Params: dataclass               its options (subclass of common.StageParams), all defaulted
  add_arguments(parser) -> None   extra flags (inputs from earlier stages); may be absent
  run(args, params) -> None       does the work; args has .shard, .out and the extra flags

Specs are imported to build the parser, so they must not import torch, open_clip, cv2 or
transformers; `run` imports the stage's implementation modules, which import them at the top.
"""

import argparse
import importlib
import logging

from ..params import parse_params
from .common import read_shard

log = logging.getLogger(__name__)

# stage name -> module. Acoustic, ASR and text stages add their lines here.
STAGES: dict[str, str] = {
    "faces": "mersemi.extract.faces",
    "visual": "mersemi.extract.visual",
    "audio": "mersemi.extract.audio",
    "acoustic": "mersemi.extract.acoustic",
    "asr": "mersemi.extract.asr",
    "text": "mersemi.extract.text",
}
# Commands that are a step of a stage, with its params (extract.<stage> of the config):
# the merge of provided transcripts is apart from ASR decoding, so editing them reruns no ASR.
COMMANDS: dict[str, str] = {**STAGES, "transcripts": "mersemi.extract.asr.merge"}


def stage_module(stage: str):
    return importlib.import_module(COMMANDS[stage])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="feature extraction stages (one manifest shard per call)")
    ssub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in COMMANDS:
        mod = stage_module(stage)
        sp = ssub.add_parser(stage, help=mod.HELP, description=mod.HELP)
        sp.add_argument("--shard", required=True, help="manifest shard CSV (or a whole manifest)")
        sp.add_argument("--out", required=True, help="output file of this shard")
        sp.add_argument(
            "--params",
            default=None,
            help=f"stage options as a JSON object (keys of {mod.Params.__name__}; see "
            "docs/extraction.md); unknown keys are an error",
        )
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(sp)
        sp.set_defaults(func=_run)


def _run(args) -> None:
    mod = stage_module(args.stage)
    params = parse_params(mod.Params, args.params, f"extract {args.stage} --params")
    log.info("extract %s: shard %s -> %s, params %s", args.stage, args.shard, args.out, params)
    mod.run(args, params)


def run_stage(stage: str, argv_like: dict):
    """Programmatic entry (tests, benchmarks): run_stage('faces', {'shard': ..., 'out': ...,
    'params': {...} or a Params, **extra flags}); returns what the stage's `run` returns."""
    mod = stage_module(stage)
    raw = dict(argv_like)
    params = raw.pop("params", None) or {}
    if not isinstance(params, mod.Params):
        params = parse_params(mod.Params, params, f"extract {stage} params")
    return mod.run(argparse.Namespace(stage=stage, **raw), params)


__all__ = ["COMMANDS", "STAGES", "read_shard", "register", "run_stage", "stage_module"]
