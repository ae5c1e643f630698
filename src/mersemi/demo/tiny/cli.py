"""`mersemi models tiny --out DIR`: write every tiny model the demo and the tests use.

Layout (each folder is exactly what the matching stage's params point at):
  DIR/hubert/   transformers HuBERT directory       -> acoustic  model_dir
  DIR/wenet/    WeNet runtime (final.zip, units.txt) -> asr       model_dir
  DIR/llm/      transformers causal LM + tokenizer   -> text      model_dir
  DIR/clip/     open_clip config + checkpoint        -> visual    (see models.json)
  DIR/zoo/      one more family per modality (demo/tiny/zoo.py: WavLM, DINOv2, BERT), for
                config.zoo.yaml's extra feature sets; models.json's `zoo` holds each as a
                `features:` entry (modality, params)
  DIR/models.json  the params of each stage for these models; written last, so its presence
                   means every model is complete (the file a workflow rule tracks).
Every model is randomly initialised from `--seed`, so the output is the same on every run.
"""

import argparse
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from ...atomic import atomic_path

log = logging.getLogger(__name__)


def _write_dir(final: Path, writer: Callable[[Path], object]):
    """Run `writer` into a temp folder beside `final`, then swap it in (no half directory)."""
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = writer(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def write_tiny_models(out: str | Path, seed: int = 0) -> dict:
    """Write all tiny models under `out`; return (and write to models.json) the stage params."""
    from .clip import write_tiny_clip
    from .hubert import write_tiny_hubert
    from .llm import write_tiny_llm
    from .wenet import write_tiny_wenet
    from .zoo import MODALITY, WRITERS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params: dict[str, dict] = {}
    _write_dir(out / "hubert", lambda d: write_tiny_hubert(d, seed))
    params["acoustic"] = {"model_dir": str(out / "hubert")}
    _write_dir(out / "wenet", lambda d: write_tiny_wenet(d, seed))
    params["asr"] = {"model_dir": str(out / "wenet")}
    _write_dir(out / "llm", lambda d: write_tiny_llm(d, seed))
    params["text"] = {"model_dir": str(out / "llm")}
    clip = _write_dir(out / "clip", lambda d: write_tiny_clip(d, seed))
    # The writer reports paths inside the temp folder; point them at the final one.
    tmp_clip = str(out / ".clip.tmp")
    params["visual"] = {
        k: v.replace(tmp_clip, str(out / "clip")) if isinstance(v, str) else v
        for k, v in dict(clip).items()
    }
    # Every writer seeds torch itself: the four above are byte for byte what they were.
    zoo = out / "zoo"
    zoo.mkdir(exist_ok=True)
    params["zoo"] = {}
    for name, writer in WRITERS.items():
        _write_dir(zoo / name, lambda d, w=writer: w(d, seed))
        key = "checkpoint" if MODALITY[name] == "visual" else "model_dir"
        params["zoo"][name] = {"modality": MODALITY[name], "params": {key: str(zoo / name)}}
    with atomic_path(out / "models.json") as tmp:
        tmp.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    log.info("tiny models (seed %d) in %s: %s", seed, out, ", ".join(sorted(params)))
    return params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="model utilities")
    msub = p.add_subparsers(dest="models_command", required=True)
    t = msub.add_parser(
        "tiny",
        help="write tiny random models in the real formats (HuBERT, WeNet, LLM, CLIP; WavLM, "
        "DINOv2, BERT)",
        description=__doc__.splitlines()[0],
    )
    t.add_argument("--out", required=True, help="output folder (one subfolder per model)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_tiny)


def _tiny(args) -> None:
    params = write_tiny_models(args.out, args.seed)
    print(json.dumps(params, indent=2))
