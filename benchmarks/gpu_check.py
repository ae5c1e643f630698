"""Every CUDA path of mersemi and its figures, in one run sized for a short GPU loan.

    bash benchmarks/gpu_check.sh                      # on the GPU machine, from the repo root
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --smoke   # CPU, tiny (tests)

Writes benchmarks/results/gpu_check.json (--out) after every part, so a run killed at its
time limit keeps what it measured, and prints one table at the end. Parts (--parts):

- peak        bf16 / fp16 / fp32 matrix products: the GPU's peak in this run, the yardstick of
              every "% peak" (FLOPs of the models counted from their shapes by torch's
              FlopCounterMode on the one-at-a-time pass, i.e. without padding, over the time
              of the batched pass: a ratio, not an absolute time).
- visual      open_clip ViT-L-14, random weights saved as an open_clip checkpoint and loaded
              by the stage's ClipEncoder: frames/s, batches of 64 frames spanning clips vs one
              clip per call, fp32 / bf16 / fp16 autocast.
- acoustic    HuBERT-Large from its config (24 x 1024, random weights, save_pretrained) through
              HubertEmbedder: audio-seconds/s, 16 chunks per batch vs one, loaded in each dtype.
- asr         the WeNet export fixture (shared/fixtures/wenet-u2pp-small, U2++ conformer,
              TorchScript, fp32 only) through WenetRecognizer: encoder + CTC audio-seconds/s on
              the device, one utterance per call (the runtime's design), CTC log-probs
              against the CPU's.
- text        Baichuan2-13B's layer shapes (hidden 5120, intermediate 13696, 40 heads) built
              from the fixture's remote code (tests/baichuan_dir.py) with 3 layers instead of
              40, through TextEmbedder: tokens/s, 32 sentences per batch vs one, bf16 / fp16 /
              fp32; figures scaled to 40 layers (see `scale_to_40`).
- text_plans  each memory plan one GPU can run (single, cpu_offload with part of the layers
              really offloaded, int8 / int4 with bitsandbytes; multi_gpu needs two GPUs): peak
              GPU memory, scaled to 40 layers, against docs/extraction_models.md; and the OOM
              back-off triggered for real (torch.cuda.set_per_process_memory_fraction caps the
              process below what a batch of 64 long sentences needs): halved, retried, logged,
              the same features as without the cap.
- training    `mersemi synth` at MER2024 size (5,030 labeled, 115,595 unlabeled, 1,169 test
              clips): pretraining and one fine-tuning fold with CUDA amp (bf16), s/epoch; and a
              small case (1,200 clips, no NEE, no dropout, fp32) trained on the CPU and on the
              GPU, whose losses and probabilities must agree within TOLERANCE.
- slots       two concurrent GPU jobs through mersemi.gpu: as the machine is (one GPU: no slot
              is taken, so both run at once) and with MERSEMI_GPUS=0,0 (two slots naming the
              same GPU: the second waits for the first to exit, then runs).

Each part runs in its own process with a time budget (a hang or a CUDA error ends that part
only) and is skipped, with a line saying why, when a package it needs is missing or the total
budget (--budget, default 450 s) cannot hold it. --smoke runs the same code on tiny models and
data (the CPU test in tests/test_gpu_check.py), so the script cannot rot between GPU loans.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY = REPO / "benchmarks" / "gpu_carry"  # wheels/ and fixtures/ for a bare machine
DOCS_MODELS = REPO / "docs" / "extraction_models.md"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "gpu_check.json"

# part -> (modules it needs, budget in s on a GPU, budget in s in smoke mode: ~5x what it
# takes on 2 idle cores, so a busy CI machine still runs every step)
PARTS = {
    "peak": ((), 15, 30),
    "visual": (("open_clip", "PIL"), 50, 45),
    "acoustic": (("transformers",), 45, 45),
    "asr": (("scipy",), 20, 30),
    "text": (("transformers", "sentencepiece", "accelerate"), 85, 45),
    "text_plans": (("transformers", "sentencepiece", "accelerate"), 85, 60),
    # MER2024-size synth alone takes ~30-50 s (single-threaded numpy + 3.4 GB of HDF5)
    "training": (("h5py", "pandas", "sklearn"), 120, 100),
    "slots": ((), 30, 30),
}
PIP = {"open_clip": "open_clip_torch", "PIL": "pillow", "sklearn": "scikit-learn"}
FIXTURES = {  # name -> (marker file, env var the tests' lookup honours)
    "baichuan2-remote-code": ("modeling_baichuan.py", "MERSEMI_BAICHUAN_FIXTURE"),
    "wenet-u2pp-small": ("final.zip", "MERSEMI_WENET_FIXTURE"),
}
BAICHUAN_LAYERS = 3  # depth of the Baichuan2-13B-shaped model (the real one has 40)
REAL_LAYERS = 40
REAL_VOCAB = 125696  # Baichuan2-13B's vocabulary (the built model's tokenizer has ~400)
# CPU vs CUDA on the small training case, fp32 both (TF32 off, torch's default for matmul)
TOLERANCE = {"loss_rel": 1e-4, "prob_abs": 1e-3}
# The OOM back-off's features against the uncapped run (different batch compositions
# and kernels in bf16: equal up to rounding)
OOM_TOLERANCE_REL = 1e-2
PACKAGES = (
    "torch",
    "transformers",
    "open_clip_torch",
    "accelerate",
    "bitsandbytes",
    "sentencepiece",
    "kaldi-native-fbank",
    "h5py",
    "pandas",
    "scikit-learn",
    "numpy",
    "snakemake",
)

log = logging.getLogger("gpu_check")


# =========================================================================== child side


class Part:
    """One part's results, saved to its JSON file after every step (read back on a kill)."""

    def __init__(self, name: str, args):
        self.name, self.args = name, args
        self.deadline = args.deadline
        self.res: dict = {"rows": [], "details": {}, "skipped_steps": []}
        self.file = Path(args.part_out)

    def save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.res, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.file)

    def row(self, **kw) -> None:
        """A table row: what, precision, batched, single, unit, peak_gpu_mb, flops_per_s
        (of the batched pass; the parent divides it by the peak of `precision`), note."""
        self.res["rows"].append(kw)
        print(f"[{self.name}] {json.dumps(kw, default=str)}", flush=True)
        self.save()

    def compare(self, what, precision, amount, unit, tb, ts, peak, flops, out, **kw) -> None:
        """The row of a stage timed batched (`tb` s, output out["b"]) and one at a time (`ts`,
        out["s"]) over `amount` units of work."""
        import numpy as np

        self.row(
            what=what,
            precision=precision,
            batched=amount / tb,
            single=amount / ts,
            unit=unit,
            peak_gpu_mb=peak,
            flops_per_s=flops / tb,
            max_abs_diff=float(np.abs(out["b"] - out["s"]).max()),
            finite=bool(np.isfinite(out["b"]).all()),  # random weights in fp16 may overflow
            **kw,
        )

    def detail(self, key: str, value) -> None:
        self.res["details"][key] = value
        self.save()

    def left(self) -> float:
        return self.deadline - time.time()

    def room(self, what: str, need_s: float) -> bool:
        """True when `need_s` seconds are left of the part's budget; else record the skip."""
        if self.left() >= need_s:
            return True
        self.res["skipped_steps"].append(
            f"{what}: needs ~{need_s:.0f} s, {max(self.left(), 0):.0f} s of the part's budget left"
        )
        self.save()
        return False


def _torch():
    import torch

    return torch


def sync(dev) -> None:
    if dev.type == "cuda":
        _torch().cuda.synchronize()


def timed(fn, dev) -> float:
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def reset_peak(dev) -> None:
    if dev.type == "cuda":
        torch = _torch()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(dev) -> float | None:
    return _torch().cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None


def count_flops(fn) -> int:
    """FLOPs of everything `fn` runs, counted from the operands' shapes by torch's own
    formulas (torch.utils.flop_counter: matmuls, convolutions, attention; elementwise work is
    not counted). A plain dispatch mode: FlopCounterMode's module tracker breaks under
    inference_mode and on weight-norm parametrizations."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += int(formula(*args, **kwargs, out_val=out))
            return out

    import torch

    # Ops on inference-mode tensors bypass Python dispatch modes (nothing is counted): run
    # the counting pass (untimed) under no_grad instead.
    real = torch.inference_mode
    torch.inference_mode = torch.no_grad
    try:
        with Count():
            fn()
    finally:
        torch.inference_mode = real
    return Count.total


def precisions(dev) -> list[str]:
    return ["bf16", "fp16", "fp32"] if dev.type == "cuda" else ["fp32"]


def fixture(name: str) -> Path | None:
    marker, env = FIXTURES[name]
    for d in ([Path(os.environ[env])] if os.environ.get(env) else []) + [
        CARRY / "fixtures" / name,
        REPO.parent / "shared" / "fixtures" / name,
        REPO.parent.parent / "shared" / "fixtures" / name,
    ]:
        if (d / marker).is_file():
            return d
    return None


def rel_diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# --------------------------------------------------------------------------- peak


def part_peak(P: Part, dev) -> None:
    torch = _torch()
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": props.name,
            "gpu_memory_gb": props.total_memory / 2**30,
            "capability": list(torch.cuda.get_device_capability(0)),
            "multiprocessors": props.multi_processor_count,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    P.detail("device_info", info)
    n = 8192 if dev.type == "cuda" else (256 if P.args.smoke else 2048)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    peak = {}
    for name in precisions(dev):
        a = torch.randn(n, n, device=dev, dtype=dtypes[name])
        b = torch.randn(n, n, device=dev, dtype=dtypes[name])
        for _ in range(3):
            a @ b
        reps = 3  # the best of 5 timings of 3 products: a peak, not a mean
        t = min(timed(lambda a=a, b=b: [a @ b for _ in range(3)], dev) for _ in range(5))
        peak[name] = 2 * n**3 * reps / t
        P.row(
            what=f"matmul {n}x{n}x{n}",
            precision=name,
            batched=peak[name] / 1e12,
            unit="TFLOP/s",
            note="the peak each '% peak' divides by",
        )
        del a, b
    P.detail("peak_flops", peak)


# --------------------------------------------------------------------------- visual


def _bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import extract_bench

    return extract_bench


def part_visual(P: Part, dev) -> None:
    from types import SimpleNamespace

    import numpy as np

    from mersemi.device import autocast_dtype
    from mersemi.extract.common import MeanPool, SpanningBatcher
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import ClipEncoder

    smoke, work = P.args.smoke, Path(P.args.work)
    t0 = time.perf_counter()
    model = _bench()._visual_model(SimpleNamespace(real_size=not smoke, work=work))
    enc = ClipEncoder(VisualParams(**model, device=str(dev)))
    P.detail(
        "model",
        {
            "name": model["model_name"],
            "dim": enc.dim,
            "params_m": sum(p.numel() for p in enc.model.visual.parameters()) / 1e6,
            "build_and_load_s": time.perf_counter() - t0,
        },
    )
    rng = np.random.default_rng(0)
    n_clips, lo, hi = (6, 2, 6) if smoke else (48, 8, 40)
    frames = [
        enc.prepare(rng.integers(0, 256, (int(rng.integers(lo, hi + 1)), 224, 224, 3), np.uint8))
        for _ in range(n_clips)
    ]
    total = sum(len(f) for f in frames)
    bs = 64

    def batched():
        pool, b = MeanPool(n_clips, enc.dim), SpanningBatcher(bs)
        for i, units in enumerate(frames):
            for owners, batch in b.add(i, units):
                pool.add(owners, enc.encode(batch))
        for owners, batch in b.flush():
            pool.add(owners, enc.encode(batch))
        return pool.mean()

    def single():
        return np.stack([enc.encode(f).mean(0) for f in frames])

    flops = count_flops(lambda: enc.encode(frames[0][:1])) * total  # per frame x frames
    P.detail("flops_per_frame", flops / total)
    for prec in precisions(dev):
        if not P.room(f"visual {prec}", 8 if not smoke else 2):
            break
        enc.p.precision = prec
        enc.encode((frames[0] * (bs // len(frames[0]) + 1))[:bs])  # warm-up at the batch size
        reset_peak(dev)
        out = {}
        tb = timed(lambda o=out: o.update(b=batched()), dev)
        peak = peak_mb(dev)
        ts = timed(lambda o=out: o.update(s=single()), dev)
        P.compare(
            f"visual {model['model_name']}",
            prec,
            total,
            "frames/s",
            tb,
            ts,
            peak,
            flops,
            out,
            note=f"{n_clips} clips, {total} frames; batch {bs} across clips vs one clip "
            f"per call; autocast {autocast_dtype(dev, prec)}",
        )


# --------------------------------------------------------------------------- acoustic


def part_acoustic(P: Part, dev) -> None:
    from types import SimpleNamespace

    import numpy as np

    from mersemi.extract.acoustic import SAMPLE_RATE, Params
    from mersemi.extract.acoustic.hubert import HubertEmbedder

    smoke, work = P.args.smoke, Path(P.args.work)
    t0 = time.perf_counter()
    model_dir = _bench()._hubert_dir(SimpleNamespace(real_size=not smoke, work=work))
    P.detail(
        "model",
        {
            "dir": model_dir,
            "build_s": time.perf_counter() - t0,
            "what": "tiny HuBERT" if smoke else "HuBERT-Large config, random",
        },
    )
    rng = np.random.default_rng(0)
    n, lo, hi = (6, 1.0, 3.0) if smoke else (64, 2.0, 14.0)
    waves = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(lo, hi) * SAMPLE_RATE)) / SAMPLE_RATE
        w = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.standard_normal(len(t))
        waves.append(w.astype(np.float32))
    seconds = sum(len(w) for w in waves) / SAMPLE_RATE
    flops = None
    for prec in precisions(dev):
        if not P.room(f"acoustic {prec}", 10 if not smoke else 2):
            break
        emb = HubertEmbedder(Params(model_dir=model_dir, device=str(dev), precision=prec))
        emb.embed(waves[:2])  # warm-up
        if flops is None:
            emb.params.batch_size = 1
            flops = count_flops(lambda e=emb: e.embed(waves))
            P.detail("flops_per_audio_second", flops / seconds)
        out = {}
        emb.params.batch_size = 16
        reset_peak(dev)
        tb = timed(lambda e=emb, o=out: o.update(b=e.embed(waves)), dev)
        peak = peak_mb(dev)
        emb.params.batch_size = 1
        ts = timed(lambda e=emb, o=out: o.update(s=e.embed(waves)), dev)
        P.compare(
            "acoustic HuBERT" + ("" if smoke else "-Large"),
            prec,
            seconds,
            "audio-s/s",
            tb,
            ts,
            peak,
            flops,
            out,
            note=f"{n} clips, {seconds:.0f} s of audio; 16 chunks per batch vs one; weights "
            f"in {str(emb.dtype).removeprefix('torch.')}",
        )
        del emb


# --------------------------------------------------------------------------- asr


def part_asr(P: Part, dev) -> None:
    import numpy as np

    from mersemi.extract.asr import Params
    from mersemi.extract.asr.recognizer import WenetRecognizer
    from mersemi.extract.asr.wenet_decode import ctc_greedy
    from mersemi.extract.wav import read_wav

    fx = fixture("wenet-u2pp-small")
    if fx is None:
        raise SkipPart("no wenet-u2pp-small fixture (benchmarks/gpu_carry.sh copies it)")
    wave, sr = read_wav(fx / "sample.wav")
    try:
        from mersemi.extract.asr.fbank import fbank

        fbank(wave[:1600])
        feat_of = fbank
        source = "kaldi-native-fbank"
    except ImportError:  # the encoder's speed does not depend on where the frames came from
        base = np.load(fx / "fbank.npy")
        feat_of = None
        source = "the fixture's fbank.npy (kaldi-native-fbank missing)"
    n = 4 if P.args.smoke else 24
    utts = []
    for k in range(n):
        reps = 1 + k % 5  # 3 .. 15 s
        utts.append(feat_of(np.tile(wave, reps)) if feat_of else np.tile(base, (reps, 1)))
    seconds = sum(len(f) for f in utts) / 100  # 10 ms frames
    rec = WenetRecognizer(Params(model_dir=str(fx), device=str(dev)))
    cpu = rec if dev.type == "cpu" else WenetRecognizer(Params(model_dir=str(fx), device="cpu"))
    for f in utts[:3]:
        rec.log_probs(f)  # TorchScript profiling runs

    def run():
        return [ctc_greedy(rec.log_probs(f)) for f in utts]

    ts = timed(run, dev)
    try:
        flops = count_flops(lambda: rec.log_probs(utts[0])) * seconds / (len(utts[0]) / 100)
    except Exception:  # noqa: BLE001 - TorchScript may hide its ops from the counter
        flops = 0
    diff = max(float(np.abs(rec.log_probs(f) - cpu.log_probs(f)).max()) for f in utts[:4])
    P.row(
        what="asr WeNet fixture encoder+CTC",
        precision="fp32",
        single=seconds / ts,
        unit="audio-s/s",
        flops_per_s=(flops / ts) or None,
        max_abs_diff=diff if dev.type != "cpu" else None,
        note=f"{n} utterances, {seconds:.0f} s; one utterance per call (runtime design); "
        f"148k-param model; log-probs vs CPU (max_abs_diff); fbank from {source}",
    )


# --------------------------------------------------------------------------- text


def _baichuan(P: Part) -> tuple[Path, dict]:
    """The Baichuan2 directory (13B widths, BAICHUAN_LAYERS deep; tiny in smoke mode), built
    once in the shared work folder for text and text_plans."""
    sys.path.insert(0, str(REPO / "tests"))
    from baichuan_dir import SMALL, build_tiny_baichuan

    fx = fixture("baichuan2-remote-code")
    if fx is None:
        raise SkipPart("no baichuan2-remote-code fixture (benchmarks/gpu_carry.sh copies it)")
    sizes = (
        dict(SMALL)
        if P.args.smoke
        else {**_bench().BAICHUAN_13B, "num_hidden_layers": BAICHUAN_LAYERS}
    )
    out = Path(P.args.work) / "baichuan"
    done = out / "BUILT"
    if not done.exists():
        t0 = time.perf_counter()
        build_tiny_baichuan(out, fx, sizes=sizes)
        done.write_text(f"{time.perf_counter() - t0:.1f}")
    return out, {**sizes, "build_s": float(done.read_text())}


def _sentences(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + list("，。！？、")
    return ["".join(rng.choice(chars, size=int(rng.integers(lo, hi + 1)))) for _ in range(n)]


def scale_to_40(
    sizes: dict,
    layers: int,
    peak_mb: float | None,
    weights_mb: float,
    weight_bytes: float,
    state_tokens: int,
    act_bytes: float = 2,
) -> dict:
    """Peak GPU memory of the 40-layer model, from the reduced one: + the weights of the
    missing layers (`weight_bytes` per parameter: 2 bf16, 1 int8, 0.5 int4), + the real
    vocabulary's embedding (kept in `act_bytes`; the built tokenizer has a few hundred
    tokens), + one more hidden state per layer kept for the batch (output_hidden_states,
    `state_tokens` = batch x longest sentence). Time per token scales with the layers
    (embedding and pooling are negligible)."""
    h, i = sizes["hidden_size"], sizes["intermediate_size"]
    layer_mb = (4 * h * h + 3 * h * i) * weight_bytes / 2**20
    embed_mb = (REAL_VOCAB - sizes.get("vocab_size", 400)) * h * act_bytes / 2**20
    state_mb = state_tokens * h * act_bytes / 2**20
    extra = (REAL_LAYERS - layers) * (layer_mb + state_mb) + embed_mb
    return {
        "layer_weights_mb": layer_mb,
        "weights_40_mb": weights_mb + (REAL_LAYERS - layers) * layer_mb + embed_mb,
        "peak_40_mb": None if peak_mb is None else peak_mb + extra,
        "tokens_per_s_factor": layers / REAL_LAYERS,
    }


def _embedder(model_dir, dev, precision="auto", memory="single", batch_size=32):
    from mersemi.extract.text import Params
    from mersemi.extract.text.llm import TextEmbedder

    return TextEmbedder(
        Params(
            model_dir=str(model_dir),
            trust_remote_code=True,
            device=str(dev),
            precision=precision,
            memory=memory,
            batch_size=batch_size,
            layers=4,
            max_tokens=512,
        )
    )


def _weights_mb(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def part_text(P: Part, dev) -> None:

    model_dir, sizes = _baichuan(P)
    layers = sizes["num_hidden_layers"]
    P.detail("model", sizes)
    texts = _sentences(8 if P.args.smoke else 256, 10, 60)
    flops = None
    for prec in precisions(dev):
        if not P.room(f"text {prec}", 15 if not P.args.smoke else 3):
            break
        emb = _embedder(model_dir, dev, prec)
        sizes["vocab_size"] = len(emb.tokenizer)
        emb.embed(texts[:4])  # warm-up
        _, counts = emb.embed(texts)
        tokens = int(counts.sum())
        if flops is None:
            emb.batch_size = 1
            flops = count_flops(lambda e=emb: e.embed(texts))
            P.detail("flops_per_token", flops / tokens)
        out = {}
        emb.batch_size = 32
        reset_peak(dev)
        tb = timed(lambda e=emb, o=out: o.update(b=e.embed(texts)[0]), dev)
        peak = peak_mb(dev)
        emb.batch_size = 1
        ts = timed(lambda e=emb, o=out: o.update(s=e.embed(texts)[0]), dev)
        longest = max(emb.token_counts(texts))
        w = _weights_mb(emb.model)
        nbytes = _torch().empty(0, dtype=emb.dtype).element_size()
        s40 = scale_to_40(sizes, layers, peak, w, nbytes, 32 * longest, nbytes)
        P.compare(
            f"text Baichuan2-13B shapes, {layers} layers",
            prec,
            tokens,
            "tokens/s",
            tb,
            ts,
            peak,
            flops,
            out,
            at_40_layers={
                "batched_tokens_per_s": tokens / tb * s40["tokens_per_s_factor"],
                "peak_gpu_mb": s40["peak_40_mb"],
                "weights_mb": s40["weights_40_mb"],
            },
            note=f"{len(texts)} sentences, {tokens} tokens; batch 32 vs one; weights {w:.0f} MB",
        )
        del emb
        reset_peak(dev)


def docs_plan_gb() -> dict:
    """GPU memory per plan for Baichuan2-13B as docs/extraction_models.md states it."""
    import re

    out = {}
    text = DOCS_MODELS.read_text(encoding="utf-8") if DOCS_MODELS.is_file() else ""
    for m in re.finditer(r"^\| `(\w+)`[^|]*\|[^|]*\| ~(\d+(?:\.\d+)?) GB", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def part_text_plans(P: Part, dev) -> None:
    torch = _torch()
    model_dir, sizes = _baichuan(P)
    layers = sizes["num_hidden_layers"]
    docs = docs_plan_gb()
    P.detail("docs_gb", docs)
    texts = _sentences(8 if P.args.smoke else 64, 10, 60)
    plans = ["single", "cpu_offload", "int8", "int4", "multi_gpu"]
    ref = None
    for plan in plans:
        why = None
        if dev.type != "cuda" and plan != "single":
            why = "needs a CUDA GPU"
        elif plan == "multi_gpu" and torch.cuda.device_count() < 2:
            why = f"needs 2+ GPUs, this machine has {torch.cuda.device_count()}"
        elif plan in ("int8", "int4") and importlib.util.find_spec("bitsandbytes") is None:
            why = "bitsandbytes missing (benchmarks/gpu_carry.sh downloads its wheel)"
        if why is None and not P.room(f"plan {plan}", 15 if not P.args.smoke else 3):
            break
        if why:
            P.res["skipped_steps"].append(f"plan {plan}: {why}")
            P.save()
            continue
        hold = None
        try:
            reset_peak(dev)
            if plan == "cpu_offload":
                # The plan gives accelerate 85 % of the GPU memory free at load time: hold all
                # but half the layers (bf16, at least one) + 300 MB while loading, then let go,
                # so the other layers really go to the CPU.
                h, i = sizes["hidden_size"], sizes["intermediate_size"]
                want = ((4 * h * h + 3 * h * i) * 2 * max(layers // 2, 1) + 300 * 2**20) / 0.85
                free = torch.cuda.mem_get_info()[0]
                if free > want:
                    hold = torch.empty(int(free - want), dtype=torch.uint8, device=dev)
            t0 = time.perf_counter()
            emb = _embedder(model_dir, dev, memory=plan, batch_size=8)
            load_s = time.perf_counter() - t0
            hold = None
            reset_peak(dev)
            emb.embed(texts[:2])
            reset_peak(dev)
            base = torch.cuda.memory_allocated() / 2**20 if dev.type == "cuda" else None
            out = {}
            tb = timed(lambda e=emb, o=out: o.update(v=e.embed(texts)), dev)
            peak = peak_mb(dev)
            vecs, counts = out["v"]
            if plan == "single":
                ref = vecs
            w = _weights_mb(emb.model)
            dmap = getattr(emb.model, "hf_device_map", None)
            where = None
            if dmap:
                where = {
                    str(d): sum(1 for v in dmap.values() if str(v) == str(d))
                    for d in set(map(str, dmap.values()))
                }
            gb40 = None
            if plan != "cpu_offload":  # offload keeps what fits on the GPU: nothing to scale
                wb = {"int8": 1, "int4": 0.5}.get(plan, 2 if dev.type == "cuda" else 4)
                state = 8 * max(emb.token_counts(texts))
                s40 = scale_to_40(
                    sizes | {"vocab_size": len(emb.tokenizer)},
                    layers,
                    peak,
                    w,
                    wb,
                    state,
                    2 if dev.type == "cuda" else 4,
                )
                gb40 = None if s40["peak_40_mb"] is None else s40["peak_40_mb"] / 1024
            P.row(
                what=f"text plan {plan}",
                precision="bf16" if dev.type == "cuda" else "fp32",
                batched=float(counts.sum()) / tb,
                unit="tokens/s",
                peak_gpu_mb=peak,
                load_s=load_s,
                weights_on_gpu_mb=base,
                device_map_modules=where,
                rel_diff_vs_single=None if ref is None else rel_diff(vecs, ref),
                at_40_layers_gb=gb40,
                docs_gb=docs.get(plan),
                note=f"{layers} layers, batch 8; at 40 layers ~{gb40 or 0:.1f} GB vs docs "
                f"~{docs.get(plan)} GB"
                if gb40
                else f"{layers} layers, batch 8",
            )
            del emb
        except Exception as e:  # noqa: BLE001 - one plan failing is a finding, not the end
            P.res["skipped_steps"].append(f"plan {plan}: failed: {type(e).__name__}: {e}"[:400])
            P.save()
        finally:
            del hold
            reset_peak(dev)
    if P.room("oom back-off", 20 if not P.args.smoke else 3):
        _oom_backoff(P, dev, model_dir)


def _oom_backoff(P: Part, dev, model_dir) -> None:
    """A batch of 64 long sentences under a memory cap that holds a few of them: the
    embedder halves the batch, retries, logs each halving; features as without the cap."""
    import numpy as np

    torch = _torch()
    texts = _sentences(16 if P.args.smoke else 64, 150, 170, seed=1)
    emb = _embedder(model_dir, dev, batch_size=len(texts))
    ref, _ = emb.embed(texts)  # no cap, one batch
    warnings: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    handler = Catch(level=logging.WARNING)
    logging.getLogger("mersemi.extract.text").addHandler(handler)
    how, cap_mb = None, None
    try:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            emb.batch_size = 1
            emb.embed([max(texts, key=len)])
            one = torch.cuda.max_memory_allocated() - base  # one sentence's activations
            cap = base + 6 * one  # a batch of 4 fits, 8 or more do not
            cap_mb = cap / 2**20
            torch.cuda.empty_cache()
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(cap / total)
            how = (
                f"torch.cuda.set_per_process_memory_fraction: {cap_mb:.0f} MB = weights + "
                f"6 x one sentence's activations ({one / 2**20:.0f} MB)"
            )
        else:  # CPU smoke: the same code path, the error raised by a wrapper
            real = emb._forward

            def forward(batch, real=real):
                if len(batch) > 2:
                    raise torch.cuda.OutOfMemoryError("simulated (CPU smoke): batch > 2")
                return real(batch)

            emb._forward = forward
            how = "simulated on CPU: a wrapper raises OutOfMemoryError for batches > 2"
        emb.batch_size = len(texts)
        t0 = time.perf_counter()
        try:
            got, _ = emb.embed(texts)
        except Exception as e:  # noqa: BLE001 - e.g. even one sentence over the cap
            P.detail(
                "oom_backoff",
                {
                    "how": how,
                    "cap_mb": cap_mb,
                    "log": warnings,
                    "error": f"{type(e).__name__}: {e}"[:400],
                },
            )
            raise
        secs = time.perf_counter() - t0
    finally:
        logging.getLogger("mersemi.extract.text").removeHandler(handler)
        if dev.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0)
    halvings = [w for w in warnings if "halved" in w]
    rel = rel_diff(got, ref)
    P.detail(
        "oom_backoff",
        {
            "how": how,
            "cap_mb": cap_mb,
            "start_batch": len(texts),
            "final_batch": emb.batch_size,
            "halvings": len(halvings),
            "log": halvings,
            "seconds": secs,
            "rel_diff_vs_uncapped": rel,
            "max_abs_diff": float(np.abs(got - ref).max()),
            "tolerance_rel": OOM_TOLERANCE_REL,
            "same_features": rel <= OOM_TOLERANCE_REL,
        },
    )
    P.row(
        what="text OOM back-off",
        precision="bf16" if dev.type == "cuda" else "fp32",
        batched=emb.batch_size,
        unit="final batch",
        note=f"{len(texts)} -> {emb.batch_size} in {len(halvings)} halving(s), logged; "
        f"rel diff vs uncapped {rel:.1e} (<= {OOM_TOLERANCE_REL}: "
        f"{'ok' if rel <= OOM_TOLERANCE_REL else 'FAIL'})",
    )


# --------------------------------------------------------------------------- training


def part_training(P: Part, dev) -> None:
    from mersemi.demo.synth import MAX_UNLABELED, SynthConfig, make_synth
    from mersemi.train.data import load_dataset

    smoke, work = P.args.smoke, Path(P.args.work) / "synth"
    t0 = time.perf_counter()
    cfg = SynthConfig(n_unlabeled=300 if smoke else MAX_UNLABELED, n_test=100 if smoke else 1169)
    make_synth(work, cfg)
    ds = load_dataset(
        work / "acoustic.h5", work / "visual.h5", work / "text.h5", work / "manifest.csv"
    )
    P.detail(
        "data",
        {
            "clips": len(ds),
            "labeled": int(len(ds.labeled())),
            "pool": int(len(ds.pool())),
            "dims": ds.dims,
            "synth_and_load_s": time.perf_counter() - t0,
        },
    )
    epochs = 1 if smoke else 2
    if P.room("pretrain + fold at full size", 10 if smoke else 40):
        _train_full(P, dev, ds, epochs)
    if P.room("small case CPU vs device", 10 if smoke else 20):
        _cpu_vs_device(P, dev, ds)


def _train_full(P: Part, dev, ds, epochs: int) -> None:
    from mersemi.classes import CLASS_INDEX
    from mersemi.train.engine import Features, make_model, train_fold
    from mersemi.train.folds import make_folds
    from mersemi.train.params import FinetuneParams, PretrainParams, parse_params
    from mersemi.train.pipeline import run_pretrain
    from mersemi.train.runtime import seed_all

    common = {"device": dev.type, "progress": False, "threads": P.args.threads, "amp": True}
    if P.args.smoke:
        common |= {"hidden": 16, "d_model": 16}
    pp = parse_params(PretrainParams, {**common, "epochs": epochs})
    reset_peak(dev)
    ck, stats = run_pretrain(ds, pp)
    P.row(
        what="train pretrain (MR-CCL)",
        precision="bf16 amp" if dev.type == "cuda" else "fp32",
        batched=stats["seconds"] / epochs,
        unit="s/epoch",
        peak_gpu_mb=peak_mb(dev),
        note=f"{stats['clips']} clips, batch {pp.batch_size}, {epochs} epoch(s), "
        f"{stats['clips_per_s']:.0f} clips/s",
    )
    fp = parse_params(FinetuneParams, {**common, "epochs": epochs, "patience": 0})
    labeled = ds.labeled()
    targets = {CLASS_INDEX[c]: fp.oversample_target for c in fp.oversample_classes}
    folds = make_folds(
        labeled, ds.labels[labeled], fp.folds, fp.seed, targets, scope=fp.oversample_scope
    )
    seed_all(fp.seed)
    model = make_model("mrccl", ds.dims, fp).to(dev)
    model.load_state_dict(ck["state"])
    feats = Features(ds.features, dev)
    reset_peak(dev)
    t0 = time.perf_counter()
    res = train_fold(model, feats, ds.labels, folds[0], fp, dev, fp.weights, "mrccl")
    secs = time.perf_counter() - t0
    P.row(
        what="train fine-tune fold 1/5",
        precision="bf16 amp" if dev.type == "cuda" else "fp32",
        batched=secs / epochs,
        unit="s/epoch",
        peak_gpu_mb=peak_mb(dev),
        note=f"{len(folds[0].train)} training rows (oversampled), {len(folds[0].val)} "
        f"validation, {epochs} epoch(s), best val WAF {res.best_waf:.3f}",
    )


def _cpu_vs_device(P: Part, dev, ds) -> None:
    import numpy as np

    from mersemi.train.data import Dataset
    from mersemi.train.engine import Features, make_model, predict, train_fold
    from mersemi.train.folds import make_folds
    from mersemi.train.params import FinetuneParams, PretrainParams, parse_params
    from mersemi.train.pipeline import run_pretrain
    from mersemi.train.runtime import seed_all

    rng = np.random.default_rng(0)
    lab, pool = ds.labeled(), ds.pool()
    n_lab, n_pool = (300, 100) if P.args.smoke else (900, 300)
    rows = np.sort(
        np.concatenate(
            [
                rng.choice(lab, n_lab, replace=False),
                rng.choice(pool, min(n_pool, len(pool)), replace=False),
            ]
        )
    )
    small = Dataset(
        ds.names[rows],
        {m: x[rows] for m, x in ds.features.items()},
        {m: v[rows] for m, v in ds.valid.items()},
        ds.split[rows],
        ds.labels[rows],
    )
    other = dev if dev.type == "cuda" else _torch().device("cpu")
    common = {
        "progress": False,
        "threads": P.args.threads,
        "amp": False,
        "nee": False,
        "dropout": 0.0,
        "hidden": 32,
        "d_model": 32,
        "batch_size": 128,
    }
    out = {}
    for name, d in (("cpu", "cpu"), ("device", other.type)):
        pp = parse_params(PretrainParams, {**common, "device": d, "epochs": 2})
        ck, stats = run_pretrain(small, pp)
        fp = parse_params(FinetuneParams, {**common, "device": d, "epochs": 2, "patience": 0})
        labeled = small.labeled()
        fold = make_folds(labeled, small.labels[labeled], fp.folds, fp.seed, None)[0]
        device = _torch().device(d)
        seed_all(fp.seed)
        model = make_model("mrccl", small.dims, fp).to(device)
        model.load_state_dict(ck["state"])
        feats = Features(small.features, device)
        res = train_fold(model, feats, small.labels, fold, fp, device, fp.weights, "mrccl")
        probs = predict(model, feats, fold.val, fp, device)
        out[name] = {
            "pretrain": [h["imcl_ae"] for h in stats["history"]],
            "finetune": [h["loss"] for h in res.history],
            "probs": np.concatenate([probs[k] for k in sorted(probs)], 1),
        }
    loss_rel = max(
        rel_diff(out["device"]["pretrain"], out["cpu"]["pretrain"]),
        rel_diff(out["device"]["finetune"], out["cpu"]["finetune"]),
    )
    prob_abs = float(np.abs(out["device"]["probs"] - out["cpu"]["probs"]).max())
    ok = loss_rel <= TOLERANCE["loss_rel"] and prob_abs <= TOLERANCE["prob_abs"]
    P.detail(
        "cpu_vs_device",
        {
            "device": str(other),
            "loss_rel_diff": loss_rel,
            "prob_max_abs_diff": prob_abs,
            "tolerance": TOLERANCE,
            "within_tolerance": ok,
            "clips": len(small),
        },
    )
    P.row(
        what=f"train small case cpu vs {other}",
        precision="fp32",
        batched=prob_abs,
        unit="max |dprob|",
        note=f"losses rel {loss_rel:.1e} (<= {TOLERANCE['loss_rel']}), probabilities "
        f"{prob_abs:.1e} (<= {TOLERANCE['prob_abs']}): {'ok' if ok else 'FAIL'}"
        + ("" if other.type == "cuda" else "; smoke: cpu vs cpu, the comparison only"),
    )


# --------------------------------------------------------------------------- slots

SLOT_JOB = r"""
import json, os, sys, time
t_start = time.time()
from mersemi.gpu import claim_gpu
gpu = claim_gpu(poll=0.2)
t_claimed = time.time()
open(sys.argv[1], "w").write("claimed")
import torch
name = "cpu"
if torch.cuda.is_available():
    a = torch.randn(4096, 4096, device="cuda")
    end = time.time() + float(sys.argv[2])
    while time.time() < end:
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    name = torch.cuda.get_device_name(0)
else:
    time.sleep(float(sys.argv[2]))
print(json.dumps({"slot": gpu, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": name,
                  "start": t_start, "claimed": t_claimed, "done": time.time()}))
"""


def part_slots(P: Part, dev) -> None:
    work = Path(P.args.work) / "slots"
    work.mkdir(parents=True, exist_ok=True)
    hold = 1.0 if P.args.smoke else 2.0
    env0 = {
        **os.environ,
        "MERSEMI_GPU_LOCK_DIR": str(work / "locks"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env0.pop("SLURM_JOB_ID", None)
    env0.pop("MERSEMI_GPU_SLOTS", None)
    variants = {"as configured": {}, "MERSEMI_GPUS=0,0": {"MERSEMI_GPUS": "0,0"}}
    if dev.type == "cpu":  # no GPU: CUDA_VISIBLE_DEVICES would say which one a job got
        env0.pop("MERSEMI_GPUS", None)
    for name, extra in variants.items():
        env = {**env0, **extra}
        if not extra:
            env.pop("MERSEMI_GPUS", None)
        marks = [work / f"{name[:2]}-{k}.claimed".replace(" ", "_") for k in range(2)]
        first = subprocess.Popen(
            [sys.executable, "-c", SLOT_JOB, str(marks[0]), str(hold)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        t_end = time.time() + 60
        while not marks[0].exists() and first.poll() is None and time.time() < t_end:
            time.sleep(0.05)
        second = subprocess.Popen(
            [sys.executable, "-c", SLOT_JOB, str(marks[1]), str(hold)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        jobs = []
        for p in (first, second):
            stdout, _ = p.communicate(timeout=max(P.left(), 5))
            jobs.append(
                json.loads(stdout.strip().splitlines()[-1])
                if p.returncode == 0
                else {"error": f"exit {p.returncode}"}
            )
        a, b = jobs
        if "error" in a or "error" in b:
            P.row(what=f"slots {name}", unit="", note=f"a job failed: {a} {b}")
            continue
        waited = b["claimed"] >= a["done"] - 0.05
        P.detail(
            f"slots {name}",
            {"jobs": jobs, "second_waited": waited, "second_wait_s": b["claimed"] - b["start"]},
        )
        P.row(
            what=f"slots {name}",
            batched=b["claimed"] - b["start"],
            unit="s waited (2nd)",
            note=f"slots {a['slot']}/{b['slot']}, CUDA_VISIBLE_DEVICES {a['visible']}/"
            f"{b['visible']}, {a['device']}; second "
            + ("waited for the first to exit" if waited else "ran alongside the first"),
        )


class SkipPart(Exception):
    """The part cannot run here (a fixture or package missing): the reason is reported."""


RUNNERS = {
    "peak": part_peak,
    "visual": part_visual,
    "acoustic": part_acoustic,
    "asr": part_asr,
    "text": part_text,
    "text_plans": part_text_plans,
    "training": part_training,
    "slots": part_slots,
}


def child(args) -> int:
    torch = _torch()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    P = Part(args.part, args)
    dev = torch.device("cuda" if args.device == "cuda" else "cpu")
    t0 = time.perf_counter()
    try:
        RUNNERS[args.part](P, dev)
        P.res["status"] = "ran"
    except SkipPart as e:
        P.res["status"], P.res["reason"] = "skipped", str(e)
    P.res["seconds"] = time.perf_counter() - t0
    P.save()
    return 0


# =========================================================================== parent side


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def missing_modules(mods) -> list[str]:
    hidden = set(filter(None, os.environ.get("MERSEMI_GPU_CHECK_HIDE", "").split(",")))
    return [m for m in mods if m in hidden or importlib.util.find_spec(m) is None]


def run_part(name: str, args, work: Path, budget: float) -> dict:
    part_out = work / f"part-{name}.json"
    logf = work / f"part-{name}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--part",
        name,
        "--device",
        args.device,
        "--work",
        str(work),
        "--part-out",
        str(part_out),
        "--threads",
        str(args.threads),
        "--deadline",
        str(time.time() + budget),
    ] + (["--smoke"] if args.smoke else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MERSEMI_NO_PROGRESS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(REPO / "src"), env.get("PYTHONPATH", "")] if p
    )
    t0 = time.perf_counter()
    with open(logf, "w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=budget + 15)  # the part stops its own steps at the budget
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = "timeout"
    res = json.loads(part_out.read_text()) if part_out.is_file() else {"rows": [], "details": {}}
    res["seconds"] = time.perf_counter() - t0
    res["budget_s"] = budget
    tail = logf.read_text(errors="replace").splitlines()[-15:] if logf.is_file() else []
    if rc == "timeout":
        res["status"], res["reason"] = "failed", f"killed after its budget of {budget:.0f} s"
    elif rc != 0 or "status" not in res:
        res["status"] = "failed"
        res["reason"] = next((ln for ln in reversed(tail) if ln.strip()), f"exit {rc}")[:500]
    if res["status"] == "failed":
        res["log_tail"] = tail
    return res


def _fmt(v, digits=1) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        if v and (abs(v) >= 1e5 or abs(v) < 10**-digits):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


def table(report: dict) -> str:
    """One line per measurement; a part that did not run, or a step it skipped, is one line
    saying why."""
    head = ("part", "what", "prec", "batched", "1-at-a-time", "unit", "peak MB", "% peak", "note")
    rows, notes = [head], {}
    for name, part in report["parts"].items():
        for r in part.get("rows", []):
            rows.append(
                (
                    name,
                    r.get("what", ""),
                    r.get("precision", ""),
                    _fmt(r.get("batched")),
                    _fmt(r.get("single")),
                    r.get("unit", ""),
                    _fmt(r.get("peak_gpu_mb"), 0),
                    _fmt(r.get("share_of_peak_pct")),
                    ("NON-FINITE features; " if r.get("finite") is False else "")
                    + r.get("note", ""),
                )
            )
        msgs = [f"{part.get('status', '?')}: {part['reason']}"] if part.get("reason") else []
        msgs += [f"skipped {s}" for s in part.get("skipped_steps", [])]
        if msgs or not part.get("rows"):
            rows.append((name, f"@{len(notes)}", *[""] * 7))
            notes[f"@{len(notes)}"] = msgs or [part.get("status", "?")]
    widths = [
        max(len(str(r[i])) for r in rows if not str(r[1]).startswith("@"))
        for i in range(len(head) - 1)
    ]
    out = []
    for r in rows:
        if str(r[1]).startswith("@"):
            out += [f"{r[0].ljust(widths[0])}  {m}" for m in notes[r[1]]]
            continue
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        out.append("  ".join([*cells, str(r[-1])]).rstrip())
    return "\n".join(out)


def parent(args) -> int:
    t_start = time.time()
    if args.device == "auto":
        args.device = "cuda" if _has_cuda() else "cpu"
    for name, (marker, env) in FIXTURES.items():  # carried fixtures, for the child processes
        d = CARRY / "fixtures" / name
        if not os.environ.get(env) and (d / marker).is_file():
            os.environ[env] = str(d)
    parts = [p for p in args.parts.split(",") if p] if args.parts else list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {list(PARTS)}")
    if "peak" not in parts:
        parts.insert(0, "peak")  # every '% peak' needs it
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "mode": "smoke" if args.smoke else "full",
        "device": args.device,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": versions(),
        "budget_s": args.budget,
        "tolerances": {"cpu_vs_device": TOLERANCE, "oom_backoff_rel": OOM_TOLERANCE_REL},
        "scaling": f"text figures at {BAICHUAN_LAYERS} layers; at 40: tokens/s x "
        f"{BAICHUAN_LAYERS}/40, memory + 37 layers' weights and hidden states + the real "
        f"{REAL_VOCAB}-token embedding (scale_to_40)",
        "parts": {},
    }

    def save():
        report["wall_s"] = time.time() - t_start
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, out)

    peak: dict = {}
    with tempfile.TemporaryDirectory(prefix="mersemi-gpu-check-") as tmp:
        work = Path(tmp)
        for k, name in enumerate(parts):
            mods, gpu_budget, smoke_budget = PARTS[name]
            budget = smoke_budget if args.smoke else gpu_budget
            left = args.budget - (time.time() - t_start)
            missing = missing_modules(("torch", *mods))
            if missing:
                pip = ", ".join(PIP.get(m, m) for m in missing)
                res = {
                    "status": "skipped",
                    "reason": f"package(s) missing: {pip} "
                    "(benchmarks/gpu_carry.sh downloads the wheels)",
                    "rows": [],
                }
            elif left < 0.5 * budget:
                res = {
                    "status": "skipped",
                    "rows": [],
                    "reason": f"{left:.0f} s of the "
                    f"{args.budget:.0f} s budget left, the part needs {budget} s",
                }
            else:
                print(
                    f"== {name} ({k + 1}/{len(parts)}, budget {min(budget, left):.0f} s)",
                    flush=True,
                )
                res = run_part(name, args, work, min(budget, left))
                peak |= res.get("details", {}).get("peak_flops", {})
            for r in res.get("rows", []):
                f, prec = r.get("flops_per_s"), (str(r.get("precision", "")).split() or [""])[0]
                if f and peak.get(prec):
                    r["share_of_peak_pct"] = 100 * f / peak[prec]
            report["parts"][name] = res
            print(
                f"   {name}: {res['status']}"
                + (f" ({res['reason']})" if res.get("reason") else "")
                + f", {res.get('seconds', 0):.0f} s",
                flush=True,
            )
            save()
    report["wall_s"] = time.time() - t_start
    save()
    print()
    print(table(report))
    print(f"\nwall {report['wall_s']:.0f} s (budget {args.budget:.0f} s); wrote {out}")
    return 0


def _has_cuda() -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--smoke", action="store_true", help="tiny models and data (CPU test)")
    ap.add_argument("--parts", default="", help=f"comma-separated, of {','.join(PARTS)}")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="total wall seconds (default 450; 360 with --smoke)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per part")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    # child-process options (one part)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--part-out", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = 2 if args.smoke else min(os.cpu_count() or 1, 16)
    if args.budget is None:
        args.budget = 360.0 if args.smoke else 450.0
    if args.part:
        return child(args)
    return parent(args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
