"""Extraction throughput: clips/s per stage, batched + prefetched vs one clip at a time.

    .venv/bin/python benchmarks/extract_bench.py [--clips 16] [--frames 24] [--real-size]
        [--stages faces,visual,audio] [--out benchmarks/results/extract_bench.json]

"One clip at a time" is the MERTools way: decode a clip, run the model on that clip's frames,
then the next clip (workers=0, span_clips=False). "Batched" decodes in worker threads while the
model runs and fills batches across clips. Model loading is excluded (models are loaded once
per shard job). Clips are made here: a face photograph (skimage astronaut) moving over a
background, with a sine-tone audio track.

By default the models are the tiny ones (`mersemi.demo.tiny`), on CPU. --real-size uses a
randomly-initialised ViT-L-14 (768-dim, the real architecture) for the visual stage; use it on
a GPU. Results go to a JSON file (benchmarks/results/ is git-ignored).

`--stages recipes` runs faces (OpenCV), visual, acoustic and text under `recipe: mertools` and
`recipe: mersemi` (docs/extraction.md) and reports clips/s of each and the largest |difference|
between their features (acoustic on wavs of 3-31 s, so MERTools' padded 10 s chunking shows).
On CPU both recipes run fp32; their precision differs on CUDA only (fp32 vs bf16).

Adding a stage (acoustic, asr, text): write `bench_<stage>(ctx) -> dict` returning
{"batched_s": ..., "single_s": ..., ...} and add it to BENCHES; `ctx` has the shard, the audio
index, the tiny-model params and the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MERSEMI_NO_PROGRESS", "1")


@dataclass
class Context:
    work: Path
    shard: Path
    n_clips: int
    real_size: bool
    device: str
    baichuan_layers: int = 3
    models: dict = field(default_factory=dict)  # stage -> params of its model
    outputs: dict = field(default_factory=dict)  # stage -> output path (for later stages)


def make_clips(folder: Path, n: int, n_frames: int) -> Path:
    import skimage.data

    from mersemi.ffmpeg_bin import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    face = skimage.data.astronaut()[20:220, 120:320]
    rows = []
    for k in range(n):
        frames = np.full((n_frames, 240, 320, 3), 60 + 10 * (k % 8), np.uint8)
        for t in range(n_frames):
            x, y = (k * 7 + t * 4) % 110, 10 + (t % 3) * 5
            frames[t, y : y + 200, x : x + 200] = face
        path = folder / f"clip{k:03d}.mp4"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo"]
        cmd += ["-pix_fmt", "rgb24", "-s", "320x240", "-r", "10", "-i", "-", "-f", "lavfi"]
        cmd += ["-i", f"sine=frequency={200 + 20 * k}:sample_rate=44100"]
        cmd += ["-t", f"{n_frames / 10}", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
        cmd += ["-c:a", "aac", "-shortest", str(path)]
        subprocess.run(cmd, input=frames.tobytes(), check=True)
        rows.append(
            {"name": path.stem, "path": str(path), "split": "train", "label": "", "shard": 0}
        )
    shard = folder / "shard.csv"
    pd.DataFrame(rows).to_csv(shard, index=False)
    return shard


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_faces(ctx: Context) -> dict:
    from mersemi.extract.faces import Params as FacesParams

    out = ctx.work / "faces.h5"
    batched = _run("faces", ctx, out, FacesParams(size=224, workers=2))
    single = _run("faces", ctx, ctx.work / "f1.h5", FacesParams(size=224, workers=0))
    ctx.outputs["faces"] = out
    return {"batched_s": batched, "single_s": single, "params": "size 224, all frames"}


def _visual_model(ctx: Context) -> dict:
    if not ctx.real_size:
        from mersemi.demo.tiny.clip import write_tiny_clip

        return write_tiny_clip(ctx.work / "clip")
    # Real architecture, random weights: saved as a checkpoint and loaded like real weights.
    import open_clip
    import torch

    ckpt = ctx.work / "vit-l-14-random.pt"
    torch.save(open_clip.create_model("ViT-L-14", pretrained=None).state_dict(), ckpt)
    return {"model_name": "ViT-L-14", "checkpoint": str(ckpt)}


def bench_visual(ctx: Context) -> dict:
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import ClipEncoder

    model = ctx.models.setdefault("visual", _visual_model(ctx))
    base = VisualParams(**model, device=ctx.device)
    enc = ClipEncoder(base)  # loaded once, not timed
    faces = ctx.outputs["faces"]
    p_b = VisualParams(**model, device=ctx.device, batch_size=64, workers=2)
    p_s = VisualParams(**model, device=ctx.device, span_clips=False, workers=0)
    _run("visual", ctx, ctx.work / "warm.h5", p_b, faces=faces, encoder=enc)  # warm-up
    batched = _run("visual", ctx, ctx.work / "v.h5", p_b, faces=faces, encoder=enc)
    single = _run("visual", ctx, ctx.work / "v1.h5", p_s, faces=faces, encoder=enc)
    from mersemi.store import read_features

    a, b = read_features(ctx.work / "v.h5"), read_features(ctx.work / "v1.h5")
    return {
        "batched_s": batched,
        "single_s": single,
        "max_abs_diff_batched_vs_single": float(np.abs(a.features - b.features).max()),
        "model": model["model_name"],
        "dim": enc.dim,
        "batch_size": 64,
    }


def bench_audio(ctx: Context) -> dict:
    from mersemi.extract.audio import Params as AudioParams

    out = ctx.work / "audio" / "shard.csv"
    batched = _run("audio", ctx, out, AudioParams(workers=2))
    single = _run("audio", ctx, ctx.work / "a1" / "shard.csv", AudioParams(workers=0))
    ctx.outputs["audio"] = out
    return {"batched_s": batched, "single_s": single}


# --- acoustic, asr, text (HuBERT, WeNet, LLM) --------------------------------------------


def _hubert_dir(ctx: Context) -> str:
    if not ctx.real_size:
        from mersemi.demo.tiny.hubert import write_tiny_hubert

        return str(write_tiny_hubert(ctx.work / "hubert"))
    # Chinese-HuBERT-Large architecture (24 layers, 1024 wide), random weights.
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    d = ctx.work / "hubert-large-random"
    cfg = HubertConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    )
    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(d)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(d)
    return str(d)


def _run(stage: str, ctx: Context, out: Path, params, **flags) -> float:
    """Seconds of one `stage` run on the bench shard (params: a dict or the stage's Params)."""
    from mersemi.extract.cli import run_stage

    args = {"shard": str(ctx.shard), "out": str(out), "params": params, **flags}
    return _timed(lambda: run_stage(stage, args))


def bench_acoustic(ctx: Context) -> dict:
    from mersemi.extract.acoustic import Params
    from mersemi.extract.acoustic.hubert import HubertEmbedder
    from mersemi.store import read_features

    model = ctx.models.setdefault("acoustic", {"model_dir": _hubert_dir(ctx)})
    base = {**model, "device": ctx.device}
    index = str(ctx.outputs["audio"])
    _run("acoustic", ctx, ctx.work / "ac-warm.h5", base, audio_index=index)  # warm-up
    # Model loading is inside run_stage for these stages; time it alone and subtract it.
    load = _timed(lambda: HubertEmbedder(Params(**base)))
    p_b = {**base, "batch_size": 16, "workers": 2}
    p_s = {**base, "batch_size": 1, "workers": 0}
    batched = _run("acoustic", ctx, ctx.work / "ac.h5", p_b, audio_index=index) - load
    single = _run("acoustic", ctx, ctx.work / "ac1.h5", p_s, audio_index=index) - load
    a, b = read_features(ctx.work / "ac.h5"), read_features(ctx.work / "ac1.h5")
    return {
        "batched_s": batched,
        "single_s": single,
        "model_load_s_subtracted": load,
        "max_abs_diff_batched_vs_single": float(np.abs(a.features - b.features).max()),
        "model": "hubert-large-random" if ctx.real_size else "tiny",
        "dim": a.meta.dim,
        "batch_size": 16,
    }


def bench_asr(ctx: Context) -> dict:
    from mersemi.demo.tiny.wenet import write_tiny_wenet
    from mersemi.extract.asr import Params
    from mersemi.extract.asr.recognizer import WenetRecognizer

    # Always the tiny WeNet model: the released runtime models cannot be rebuilt here.
    model = ctx.models.setdefault("asr", {"model_dir": str(write_tiny_wenet(ctx.work / "wn"))})
    base = {**model, "device": ctx.device}
    index = str(ctx.outputs["audio"])
    load = _timed(lambda: WenetRecognizer(Params(**base)))
    _run("asr", ctx, ctx.work / "asr-warm.csv", base, audio_index=index)  # TorchScript warm-up
    out = ctx.work / "asr" / "shard.csv"
    # WeNet's runtime encoder takes one utterance per call, so "batched" here means fbank and
    # wav decoding in worker threads overlapping the model; one-at-a-time decodes inline.
    batched = _run("asr", ctx, out, {**base, "workers": 2}, audio_index=index) - load
    single = _run("asr", ctx, ctx.work / "asr1.csv", {**base, "workers": 0}, audio_index=index)
    ctx.outputs["asr"] = out
    return {
        "batched_s": batched,
        "single_s": single - load,
        "model": "tiny wenet",
        "decoding_ms": _asr_decoding_ms(ctx),
    }


def _asr_decoding_ms(ctx: Context, repeats: int = 5) -> dict | None:
    """Per-utterance cost of each decoding step on the WeNet export fixture (3 s sample):
    encoder (full / streaming chunk 16), CTC greedy, prefix beam, attention rescoring."""
    from mersemi.extract.asr import Params
    from mersemi.extract.asr.fbank import fbank
    from mersemi.extract.asr.recognizer import WenetRecognizer
    from mersemi.extract.asr.wenet_decode import ctc_greedy, ctc_prefix_beam_nbest
    from mersemi.extract.wav import read_wav

    fixture = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wenet-u2pp-small"
    if not fixture.is_dir():
        return None
    feats = fbank(read_wav(fixture / "sample.wav")[0])
    full = WenetRecognizer(Params(model_dir=str(fixture), device=ctx.device))
    stream = WenetRecognizer(Params(model_dir=str(fixture), device=ctx.device, chunk_size=16))
    enc = full.encode(feats)
    logp = full.ctc_log_probs(enc)
    nbest = ctc_prefix_beam_nbest(logp, 10)

    def ms(fn) -> float:
        fn()  # warm-up (TorchScript profiling runs)
        return 1000 * sorted(_timed(fn) for _ in range(repeats))[repeats // 2]

    return {
        "model": "wenet-u2pp-small fixture (148k params), 3 s utterance, median of 5",
        "fbank": ms(lambda: fbank(read_wav(fixture / "sample.wav")[0])),
        "encoder_full": ms(lambda: full.encode(feats)),
        "encoder_streaming_chunk16": ms(lambda: stream.encode(feats)),
        "ctc_greedy": ms(lambda: ctc_greedy(logp)),
        "ctc_prefix_beam_10": ms(lambda: ctc_prefix_beam_nbest(logp, 10)),
        "attention_rescoring_10": ms(lambda: full.rescore(enc, nbest)),
    }


def bench_text(ctx: Context) -> dict:
    from mersemi.demo.tiny.llm import write_tiny_llm
    from mersemi.extract.text import Params
    from mersemi.extract.text.llm import TextEmbedder
    from mersemi.store import read_features

    model = ctx.models.setdefault("text", {"model_dir": str(write_tiny_llm(ctx.work / "llm"))})
    base = {**model, "device": ctx.device}
    # Sentences of varied length (the tiny ASR output of tones is not text-like).
    rng = np.random.default_rng(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    shard = pd.read_csv(ctx.shard)
    texts = ["".join(rng.choice(chars, size=int(rng.integers(5, 60)))) for _ in shard["name"]]
    tr = ctx.work / "text-transcripts.csv"
    pd.DataFrame({"name": shard["name"], "text": texts, "source": "asr"}).to_csv(tr, index=False)
    load = _timed(lambda: TextEmbedder(Params(**base)))
    _run("text", ctx, ctx.work / "t-warm.h5", base, transcripts=str(tr))
    batched = _run("text", ctx, ctx.work / "t.h5", {**base, "batch_size": 32}, transcripts=str(tr))
    single = _run("text", ctx, ctx.work / "t1.h5", {**base, "batch_size": 1}, transcripts=str(tr))
    a, b = read_features(ctx.work / "t.h5"), read_features(ctx.work / "t1.h5")
    return {
        "batched_s": batched - load,
        "single_s": single - load,
        "model_load_s_subtracted": load,
        "max_abs_diff_batched_vs_single": float(np.abs(a.features - b.features).max()),
        "model": "tiny llm",
        "batch_size": 32,
    }


# Baichuan2-13B's layer shapes (config.json of the real model); depth set by --baichuan-layers.
BAICHUAN_13B = {"hidden_size": 5120, "intermediate_size": 13696, "num_attention_heads": 40}


def bench_text_baichuan(ctx: Context) -> dict:
    """The text stage through Baichuan2's own remote code (shared/fixtures) at the real 13B
    layer shapes and a reduced depth: tokens/s batched and one sentence at a time, peak
    memory, per memory plan this machine can run (CPU: `single` only)."""
    import resource

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from baichuan_dir import build_tiny_baichuan, fixture_dir

    from mersemi.extract.text import Params
    from mersemi.extract.text.llm import TextEmbedder

    fixture = fixture_dir()
    if fixture is None:
        raise SystemExit("text_baichuan: no shared/fixtures/baichuan2-remote-code")
    sizes = {**BAICHUAN_13B, "num_hidden_layers": ctx.baichuan_layers}
    t0 = time.perf_counter()
    model_dir = build_tiny_baichuan(ctx.work / "baichuan", fixture, sizes=sizes)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + list("，。！？、")
    texts = ["".join(rng.choice(chars, size=int(rng.integers(10, 60)))) for _ in range(ctx.n_clips)]
    plans = ["single"]
    if torch.cuda.is_available():
        plans += ["cpu_offload"] + (["multi_gpu"] if torch.cuda.device_count() > 1 else [])
        try:
            import bitsandbytes  # noqa: F401

            plans += ["int8", "int4"]
        except ImportError:
            pass
    out = {"layers": ctx.baichuan_layers, "shapes": BAICHUAN_13B, "build_s": build_s, "plans": {}}
    for plan in plans:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        emb = TextEmbedder(Params(model_dir=str(model_dir), trust_remote_code=True,
                                  device=ctx.device, memory=plan, batch_size=8,
                                  layers=min(4, ctx.baichuan_layers + 1)))  # fmt: skip
        load_s = time.perf_counter() - t0
        emb.embed(texts[:2])  # warm-up
        batched = _timed(lambda e=emb: e.embed(texts))
        _, counts = emb.embed(texts)
        emb.batch_size = 1
        single = _timed(lambda e=emb: e.embed(texts))
        tokens = int(counts.sum())
        out["plans"][plan] = {
            "load_s": load_s,
            "tokens": tokens,
            "batched_tokens_per_s": tokens / batched,
            "single_tokens_per_s": tokens / single,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20
            if torch.cuda.is_available()
            else None,
            "weights_mb": sum(p.numel() * p.element_size() for p in emb.model.parameters()) / 2**20,
        }
        print(f"text_baichuan {plan}: {out['plans'][plan]}", flush=True)
        del emb
    first = out["plans"]["single"]
    out["batched_s"] = first["tokens"] / first["batched_tokens_per_s"]
    out["single_s"] = first["tokens"] / first["single_tokens_per_s"]
    return out


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
    from mersemi.extract.acoustic.hubert import HubertEmbedder
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
    model = ctx.models.setdefault("visual", _visual_model(ctx))
    enc = {r: ClipEncoder(VisualParams(**model, device=ctx.device, recipe=r)) for r in recipes}
    for r in recipes:
        faces[r] = ctx.work / f"rfaces-{r}.h5"
        p = FacesParams(recipe=r, workers=2)
        r_faces[r] = {"s": _run("faces", ctx, faces[r], p)}
        vp = VisualParams(**model, device=ctx.device, recipe=r, batch_size=64)
        vis[r] = ctx.work / f"rvis-{r}.h5"
        _run("visual", ctx, ctx.work / "rvis-warm.h5", vp, faces=faces[r], encoder=enc[r])
        r_vis[r] = {"s": _run("visual", ctx, vis[r], vp, faces=faces[r], encoder=enc[r])}
        with __import__("h5py").File(faces[r], "r") as h5:
            r_faces[r]["crops"] = int(h5.attrs["n_crops"])
            r_faces[r]["size"] = int(h5.attrs["size"])
    out["faces"] = {"recipes": r_faces, "note": "OpenCV backend; mertools keeps every frame"}
    note = "on each recipe's own crops (mertools: 112 px, every frame)"
    out["visual"] = {"recipes": r_vis, "max_abs_diff": diff(vis), "note": note}

    # acoustic on 3-31 s wavs
    shard, index = _recipe_wavs(ctx)
    hub = ctx.models.setdefault("acoustic", {"model_dir": _hubert_dir(ctx)})
    ac, r_ac = {}, {}
    for r in recipes:
        p = {**hub, "device": ctx.device, "recipe": r, "batch_size": 16}
        load = _timed(lambda p=p: HubertEmbedder(AcParams(**p)))
        ac[r] = ctx.work / f"rac-{r}.h5"
        args = {"shard": str(shard), "audio_index": str(index), "out": str(ac[r]), "params": p}
        run_stage("acoustic", args)  # warm-up
        r_ac[r] = {"s": _timed(lambda a=args: run_stage("acoustic", a)) - load}
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
        load = _timed(lambda p=p: TextEmbedder(TextParams(**p)))
        tx[r] = ctx.work / f"rtx-{r}.h5"
        _run("text", ctx, tx[r], p, transcripts=str(tr))  # warm-up
        r_tx[r] = {"s": _run("text", ctx, tx[r], p, transcripts=str(tr)) - load}
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
# e.g. ctx.outputs["audio"] is the audio index for acoustic/asr).
BENCHES = {
    "faces": bench_faces,
    "visual": bench_visual,
    "audio": bench_audio,
    "acoustic": bench_acoustic,
    "asr": bench_asr,
    "text": bench_text,
    "text_baichuan": bench_text_baichuan,
    "recipes": bench_recipes,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--frames", type=int, default=24, help="frames per clip (10 fps)")
    ap.add_argument(
        "--stages", default=",".join(s for s in BENCHES if s not in ("text_baichuan", "recipes"))
    )
    ap.add_argument("--real-size", action="store_true", help="real-size random architectures")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--baichuan-layers",
        type=int,
        default=3,
        help="text_baichuan: depth at the real 13B widths (40 for the real model)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--out", default="benchmarks/results/extract_bench.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(BENCHES))
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; known: {list(BENCHES)}")
    if "visual" in stages and "faces" not in stages:
        stages.insert(0, "faces")
    if {"acoustic", "asr"} & set(stages) and "audio" not in stages:
        stages.insert(0, "audio")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mersemi-bench-") as tmp:
        work = Path(tmp)
        shard = make_clips(work / "clips", args.clips, args.frames)
        ctx = Context(work, shard, args.clips, args.real_size, args.device, args.baichuan_layers)
        for stage in BENCHES:
            if stage not in stages:
                continue
            r = BENCHES[stage](ctx)
            r["clips"] = args.clips
            r["batched_clips_per_s"] = args.clips / r["batched_s"]
            r["single_clips_per_s"] = args.clips / r["single_s"]
            r["speedup"] = r["single_s"] / r["batched_s"]
            results[stage] = r
            print(
                f"{stage:8s} batched {r['batched_clips_per_s']:7.2f} clips/s  "
                f"one-at-a-time {r['single_clips_per_s']:7.2f} clips/s  x{r['speedup']:.2f}",
                flush=True,
            )
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "frames_per_clip": args.frames,
        "real_size": args.real_size,
        "device": str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu",
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stages": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
