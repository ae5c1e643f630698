"""text_plans: each memory plan one GPU can run, against docs/extraction_models.md, and the
OOM back-off triggered for real."""

from __future__ import annotations

import importlib.util
import logging
import time

from .part import (
    DOCS_MODELS,
    OOM_TOLERANCE_REL,
    Part,
    lazy_torch,
    peak_mb,
    rel_diff,
    reset_peak,
    timed,
)
from .text import baichuan_model, embedder, model_weights_mb, scale_to_40, sentences


def docs_plan_gb() -> dict:
    """GPU memory per plan for Baichuan2-13B as docs/extraction_models.md states it."""
    import re

    out = {}
    text = DOCS_MODELS.read_text(encoding="utf-8") if DOCS_MODELS.is_file() else ""
    for m in re.finditer(r"^\| `(\w+)`[^|]*\|[^|]*\| ~(\d+(?:\.\d+)?) GB", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def run(P: Part, dev) -> None:
    torch = lazy_torch()
    model_dir, sizes = baichuan_model(P)
    layers = sizes["num_hidden_layers"]
    docs = docs_plan_gb()
    P.detail("docs_gb", docs)
    texts = sentences(8 if P.args.smoke else 64, 10, 60)
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
            emb = embedder(model_dir, dev, memory=plan, batch_size=8)
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
            w = model_weights_mb(emb.model)
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
        oom_backoff(P, dev, model_dir)


def oom_backoff(P: Part, dev, model_dir) -> None:
    """A batch of 64 long sentences under a memory cap that holds a few of them: the
    embedder halves the batch, retries, logs each halving; features as without the cap."""
    import numpy as np

    torch = lazy_torch()
    texts = sentences(16 if P.args.smoke else 64, 150, 170, seed=1)
    emb = embedder(model_dir, dev, batch_size=len(texts))
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
