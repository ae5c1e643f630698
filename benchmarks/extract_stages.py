"""The per-stage benches of benchmarks/extract_bench.py (`bench_<stage>(ctx) -> dict`), the
`Context` they share and the bench clips (run from benchmarks/, as the script's siblings)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mersemi.fixtures.random_models import hubert_dir, visual_model


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


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_faces(ctx: Context) -> dict:
    from mersemi.extract.faces import Params as FacesParams

    out = ctx.work / "faces.h5"
    batched = timed_run("faces", ctx, out, FacesParams(size=224, workers=2))
    single = timed_run("faces", ctx, ctx.work / "f1.h5", FacesParams(size=224, workers=0))
    ctx.outputs["faces"] = out
    return {"batched_s": batched, "single_s": single, "params": "size 224, all frames"}


def bench_visual(ctx: Context) -> dict:
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import ClipEncoder

    model = ctx.models.setdefault("visual", visual_model(ctx.work, ctx.real_size))
    base = VisualParams(**model, device=ctx.device)
    enc = ClipEncoder(base)  # loaded once, not timed
    faces = ctx.outputs["faces"]
    p_b = VisualParams(**model, device=ctx.device, batch_size=64, workers=2)
    p_s = VisualParams(**model, device=ctx.device, span_clips=False, workers=0)
    timed_run("visual", ctx, ctx.work / "warm.h5", p_b, faces=faces, encoder=enc)  # warm-up
    batched = timed_run("visual", ctx, ctx.work / "v.h5", p_b, faces=faces, encoder=enc)
    single = timed_run("visual", ctx, ctx.work / "v1.h5", p_s, faces=faces, encoder=enc)
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
    batched = timed_run("audio", ctx, out, AudioParams(workers=2))
    single = timed_run("audio", ctx, ctx.work / "a1" / "shard.csv", AudioParams(workers=0))
    ctx.outputs["audio"] = out
    return {"batched_s": batched, "single_s": single}


# --- acoustic, asr, text (HuBERT, WeNet, LLM) --------------------------------------------


def timed_run(stage: str, ctx: Context, out: Path, params, **flags) -> float:
    """Seconds of one `stage` run on the bench shard (params: a dict or the stage's Params)."""
    from mersemi.extract.cli import run_stage

    args = {"shard": str(ctx.shard), "out": str(out), "params": params, **flags}
    return timed(lambda: run_stage(stage, args))


def bench_acoustic(ctx: Context) -> dict:
    from mersemi.extract.acoustic import Params
    from mersemi.extract.acoustic.speech import SpeechEmbedder
    from mersemi.store import read_features

    model = ctx.models.setdefault("acoustic", {"model_dir": hubert_dir(ctx.work, ctx.real_size)})
    base = {**model, "device": ctx.device}
    index = str(ctx.outputs["audio"])
    timed_run("acoustic", ctx, ctx.work / "ac-warm.h5", base, audio_index=index)  # warm-up
    # Model loading is inside run_stage for these stages; time it alone and subtract it.
    load = timed(lambda: SpeechEmbedder(Params(**base)))
    p_b = {**base, "batch_size": 16, "workers": 2}
    p_s = {**base, "batch_size": 1, "workers": 0}
    batched = timed_run("acoustic", ctx, ctx.work / "ac.h5", p_b, audio_index=index) - load
    single = timed_run("acoustic", ctx, ctx.work / "ac1.h5", p_s, audio_index=index) - load
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
    load = timed(lambda: WenetRecognizer(Params(**base)))
    timed_run("asr", ctx, ctx.work / "asr-warm.csv", base, audio_index=index)  # TorchScript warm-up
    out = ctx.work / "asr" / "shard.csv"
    # WeNet's runtime encoder takes one utterance per call, so "batched" here means fbank and
    # wav decoding in worker threads overlapping the model; one-at-a-time decodes inline.
    batched = timed_run("asr", ctx, out, {**base, "workers": 2}, audio_index=index) - load
    single = timed_run("asr", ctx, ctx.work / "asr1.csv", {**base, "workers": 0}, audio_index=index)
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
        return 1000 * sorted(timed(fn) for _ in range(repeats))[repeats // 2]

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
    load = timed(lambda: TextEmbedder(Params(**base)))
    timed_run("text", ctx, ctx.work / "t-warm.h5", base, transcripts=str(tr))
    batched = timed_run(
        "text", ctx, ctx.work / "t.h5", {**base, "batch_size": 32}, transcripts=str(tr)
    )
    single = timed_run(
        "text", ctx, ctx.work / "t1.h5", {**base, "batch_size": 1}, transcripts=str(tr)
    )
    a, b = read_features(ctx.work / "t.h5"), read_features(ctx.work / "t1.h5")
    return {
        "batched_s": batched - load,
        "single_s": single - load,
        "model_load_s_subtracted": load,
        "max_abs_diff_batched_vs_single": float(np.abs(a.features - b.features).max()),
        "model": "tiny llm",
        "batch_size": 32,
    }


def bench_text_baichuan(ctx: Context) -> dict:
    """The text stage through Baichuan2's own remote code (shared/fixtures) at the real 13B
    layer shapes and a reduced depth: tokens/s batched and one sentence at a time, peak
    memory, per memory plan this machine can run (CPU: `single` only)."""
    import resource

    import torch

    from mersemi.extract.text import Params
    from mersemi.extract.text.llm import TextEmbedder
    from mersemi.fixtures.baichuan import BAICHUAN_13B, build_tiny_baichuan, fixture_dir

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
        batched = timed(lambda e=emb: e.embed(texts))
        _, counts = emb.embed(texts)
        emb.batch_size = 1
        single = timed(lambda e=emb: e.embed(texts))
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
