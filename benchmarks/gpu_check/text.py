"""text: Baichuan2-13B's layer shapes (fewer layers) through TextEmbedder; the Baichuan2
directory, sentences and the scaling to 40 layers that text_plans uses too."""

from __future__ import annotations

import time
from pathlib import Path

from .part import (
    BAICHUAN_LAYERS,
    REAL_LAYERS,
    REAL_VOCAB,
    Part,
    SkipPart,
    count_flops,
    fixture,
    lazy_torch,
    peak_mb,
    precisions,
    reset_peak,
    timed,
)


def baichuan_model(P: Part) -> tuple[Path, dict]:
    """The Baichuan2 directory (13B widths, BAICHUAN_LAYERS deep; tiny in smoke mode), built
    once in the shared work folder for text and text_plans."""
    from mersemi.fixtures.baichuan import BAICHUAN_13B, SMALL, build_tiny_baichuan

    fx = fixture("baichuan2-remote-code")
    if fx is None:
        raise SkipPart("no baichuan2-remote-code fixture (benchmarks/gpu_carry.sh copies it)")
    sizes = dict(SMALL) if P.args.smoke else {**BAICHUAN_13B, "num_hidden_layers": BAICHUAN_LAYERS}
    out = Path(P.args.work) / "baichuan"
    done = out / "BUILT"
    if not done.exists():
        t0 = time.perf_counter()
        build_tiny_baichuan(out, fx, sizes=sizes)
        done.write_text(f"{time.perf_counter() - t0:.1f}")
    return out, {**sizes, "build_s": float(done.read_text())}


def sentences(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
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


def embedder(model_dir, dev, precision="auto", memory="single", batch_size=32):
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


def model_weights_mb(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def run(P: Part, dev) -> None:
    model_dir, sizes = baichuan_model(P)
    layers = sizes["num_hidden_layers"]
    P.detail("model", sizes)
    texts = sentences(8 if P.args.smoke else 256, 10, 60)
    flops = None
    for prec in precisions(dev):
        if not P.room(f"text {prec}", 15 if not P.args.smoke else 3):
            break
        emb = embedder(model_dir, dev, prec)
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
        w = model_weights_mb(emb.model)
        nbytes = lazy_torch().empty(0, dtype=emb.dtype).element_size()
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
