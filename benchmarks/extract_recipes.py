"""`--stages recipes` of benchmarks/extract_bench.py: faces, visual, acoustic and text under
`recipe: mertools` and `recipe: mersemi`, clips/s of each and the largest |difference| between
their features (run from benchmarks/, as the script's sibling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from extract_stages import Context, timed, timed_run

from mersemi.fixtures.random_models import hubert_dir, visual_model

RECIPE_SECONDS = (3.0, 8.0, 14.2, 23.0, 31.0)  # acoustic clip lengths, cycled


def _recipe_wavs(ctx: Context) -> tuple[Path, Path]:
    """Tone-and-noise wavs of RECIPE_SECONDS lengths, with a shard and an audio index."""
    from mersemi.extract.wav import write_wav

    folder = ctx.work / "recipe-wavs"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    rows = []
    for k in range(ctx.n_clips):
        sec = RECIPE_SECONDS[k % len(RECIPE_SECONDS)]
        t = np.arange(int(sec * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 10 * k) * t) + 0.05 * rng.standard_normal(len(t))
        wav = folder / f"w{k:03d}.wav"
        write_wav(wav, wave)
        rows.append({"name": f"w{k:03d}", "path": str(wav), "wav": str(wav), "valid": True,
                     "reason": "", "duration": sec, "detail": ""})  # fmt: skip
    df = pd.DataFrame(rows)
    shard, index = folder / "shard.csv", folder / "audio.csv"
    df[["name", "path"]].to_csv(shard, index=False)
    df[["name", "wav", "valid", "reason", "duration", "detail"]].to_csv(index, index=False)
    return shard, index


def bench_recipes(ctx: Context) -> dict:
    """Per stage: clips/s under each recipe (model loading excluded where the stage loads it
    inside run_stage), and max |mertools - mersemi| over the features of the valid clips."""
    from mersemi.extract.acoustic import Params as AcParams
    from mersemi.extract.acoustic.speech import SpeechEmbedder
    from mersemi.extract.cli import run_stage
    from mersemi.extract.faces import Params as FacesParams
    from mersemi.extract.text import Params as TextParams
    from mersemi.extract.text.llm import TextEmbedder
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import ClipEncoder
    from mersemi.store import read_features

    recipes = ("mertools", "mersemi")
    out: dict = {}

    def diff(paths: dict) -> float:
        a, b = (read_features(paths[r]) for r in recipes)
        both = a.valid & b.valid
        return float(np.abs(a.features[both] - b.features[both]).max()) if both.any() else 0.0

    # faces (OpenCV: the demo's backend) and visual on each recipe's crops
    faces, vis, r_faces, r_vis = {}, {}, {}, {}
    model = ctx.models.setdefault("visual", visual_model(ctx.work, ctx.real_size))
    enc = {r: ClipEncoder(VisualParams(**model, device=ctx.device, recipe=r)) for r in recipes}
    for r in recipes:
        faces[r] = ctx.work / f"rfaces-{r}.h5"
        p = FacesParams(recipe=r, workers=2)
        r_faces[r] = {"s": timed_run("faces", ctx, faces[r], p)}
        vp = VisualParams(**model, device=ctx.device, recipe=r, batch_size=64)
        vis[r] = ctx.work / f"rvis-{r}.h5"
        timed_run("visual", ctx, ctx.work / "rvis-warm.h5", vp, faces=faces[r], encoder=enc[r])
        r_vis[r] = {"s": timed_run("visual", ctx, vis[r], vp, faces=faces[r], encoder=enc[r])}
        with __import__("h5py").File(faces[r], "r") as h5:
            r_faces[r]["crops"] = int(h5.attrs["n_crops"])
            r_faces[r]["size"] = int(h5.attrs["size"])
    out["faces"] = {"recipes": r_faces, "note": "OpenCV backend; mertools keeps every frame"}
    note = "on each recipe's own crops (mertools: 112 px, every frame)"
    out["visual"] = {"recipes": r_vis, "max_abs_diff": diff(vis), "note": note}

    # acoustic on 3-31 s wavs
    shard, index = _recipe_wavs(ctx)
    hub = ctx.models.setdefault("acoustic", {"model_dir": hubert_dir(ctx.work, ctx.real_size)})
    ac, r_ac = {}, {}
    for r in recipes:
        p = {**hub, "device": ctx.device, "recipe": r, "batch_size": 16}
        load = timed(lambda p=p: SpeechEmbedder(AcParams(**p)))
        ac[r] = ctx.work / f"rac-{r}.h5"
        args = {"shard": str(shard), "audio_index": str(index), "out": str(ac[r]), "params": p}
        run_stage("acoustic", args)  # warm-up
        r_ac[r] = {"s": timed(lambda a=args: run_stage("acoustic", a)) - load}
    out["acoustic"] = {"recipes": r_ac, "max_abs_diff": diff(ac),
                       "seconds": list(RECIPE_SECONDS)}  # fmt: skip

    # text (tiny LLM), sentences with spaces so verbatim vs collapsed shows
    from mersemi.demo.tiny.llm import write_tiny_llm

    llm = ctx.models.setdefault("text", {"model_dir": str(write_tiny_llm(ctx.work / "llm"))})
    rng = np.random.default_rng(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + ["  ", " "]
    names = pd.read_csv(ctx.shard)["name"]
    texts = ["".join(rng.choice(chars, size=int(rng.integers(5, 60)))) for _ in names]
    tr = ctx.work / "rtext.csv"
    pd.DataFrame({"name": names, "text": texts, "source": "asr"}).to_csv(tr, index=False)
    tx, r_tx = {}, {}
    for r in recipes:
        p = {**llm, "device": ctx.device, "recipe": r, "batch_size": 32}
        load = timed(lambda p=p: TextEmbedder(TextParams(**p)))
        tx[r] = ctx.work / f"rtx-{r}.h5"
        timed_run("text", ctx, tx[r], p, transcripts=str(tr))  # warm-up
        r_tx[r] = {"s": timed_run("text", ctx, tx[r], p, transcripts=str(tr)) - load}
    out["text"] = {"recipes": r_tx, "max_abs_diff": diff(tx)}
    for stage in out.values():
        for r in stage["recipes"].values():
            r["clips_per_s"] = ctx.n_clips / r["s"]
    for stage, v in out.items():
        line = "  ".join(f"{r} {v['recipes'][r]['clips_per_s']:7.2f} clips/s" for r in recipes)
        d = f"  max|diff| {v['max_abs_diff']:.3g}" if "max_abs_diff" in v else ""
        print(f"recipes {stage:8s} {line}{d}", flush=True)
    # the generic report fields (batched = mertools, single = mersemi)
    tot = {r: sum(v["recipes"][r]["s"] for v in out.values()) for r in recipes}
    import torch

    gpu = torch.cuda.is_available() and ctx.device != "cpu"
    return {"batched_s": tot["mertools"], "single_s": tot["mersemi"], "per_stage": out,
            "precision": "CUDA: mertools fp32 (text fp16), mersemi bf16" if gpu
            else "CPU (no GPU): both recipes fp32"}  # fmt: skip


# Stage name -> bench function, run in this order (later stages may use earlier outputs,
