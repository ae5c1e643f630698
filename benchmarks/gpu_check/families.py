"""families: one extra encoder family per modality (DINOv2, a BERT encoder, WavLM): the
mertools-zoo fixture's tiny models and inputs through each stage's public run path
(`run_stage`, the file it writes read back) on the device, against the files MERTools' own
scripts wrote from them: max|ours - MERTools| / max|MERTools| per clip, under TOLERANCE for
the precision the stage ran in; s/clip of the whole stage call, batched vs one clip per call."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from .part import Part, SkipPart, fixture, rel_diff, timed

# modality -> the zoo's model (MERTools' name; benchmarks/gpu_carry.sh copies these three)
MODELS = {
    "visual": "dinov2-large",
    "text": "chinese-roberta-wwm-ext-large",
    "acoustic": "wavlm-base",
}
# the family the stage must resolve from the model's config.json
FAMILY = {"visual": "dinov2", "text": "encoder", "acoustic": "wavlm"}
# The precision each stage runs in on CUDA under recipe `mertools` with `precision: auto`
# (MERTools' own: fp32 for vision and speech encoders, `model.half()` for text); CPU: fp32.
MERTOOLS_CUDA = {"visual": "fp32", "text": "fp16", "acoustic": "fp32"}
# max|a-b| / max|b| against MERTools' files. CPU fp32: the issue's (and CI's) 1e-5. CUDA fp32:
# 1e-3, since cuDNN runs fp32 convolutions in TF32 by default (torch.backends.cudnn.allow_tf32:
# DINOv2's patch embedding, WavLM's feature extractor) and other kernels sum in another order.
# fp16 weights (text on CUDA): 1e-2, the half-precision rounding of every layer (the OOM
# back-off's tolerance too).
TOLERANCE = {"cpu fp32": 1e-5, "cuda fp32": 1e-3, "cuda fp16": 1e-2, "cuda bf16": 1e-2}
VIDEOS = ("astro_tilt", "hopper_cut", "hopper_pan")


def zoo() -> Path:
    d = fixture("mertools-zoo")
    if d is None:
        raise SkipPart("no mertools-zoo fixture (benchmarks/gpu_carry.sh copies the part it needs)")
    return d


def reference(fx: Path, modality: str, names) -> dict:
    import numpy as np

    folder = fx / "mertools" / "features" / f"{MODELS[modality]}-UTT"
    return {n: np.load(folder / f"{n}.npy") for n in names}


def write_shard(path: Path, names) -> Path:
    import pandas as pd

    pd.DataFrame({"name": list(names), "path": [f"/none/{n}" for n in names]}).to_csv(
        path, index=False
    )
    return path


def visual_inputs(fx: Path, work: Path) -> dict:
    """A crops file of the zoo's three videos (MERTools' face-step arrays, BGR, as RGB) and
    its shard."""
    import h5py
    import numpy as np

    faces = work / "zoo-faces.h5"
    data = {
        v: np.load(fx / "inputs" / "openface_face" / v / f"{v}.npy")[..., ::-1].copy()
        for v in VIDEOS
    }
    str_t = h5py.string_dtype("utf-8")
    with h5py.File(faces, "w") as h5:
        h5["crops"] = np.concatenate([data[v] for v in VIDEOS])
        h5["frame"] = np.concatenate([np.arange(len(data[v])) for v in VIDEOS])
        h5["offsets"] = np.cumsum([0] + [len(data[v]) for v in VIDEOS])
        h5.create_dataset("names", data=list(VIDEOS), dtype=str_t)
        h5["valid"] = np.ones(len(VIDEOS), bool)
        h5.create_dataset("reason", data=[""] * len(VIDEOS), dtype=str_t)
        h5.attrs.update(backend="fixture", size=112, params="{}", n_clips=len(VIDEOS))
    shard = write_shard(work / "zoo-visual-shard.csv", VIDEOS)
    return {"names": VIDEOS, "argv": {"shard": str(shard), "faces": str(faces)}}


def text_inputs(fx: Path, work: Path) -> dict:
    import pandas as pd

    csv = fx / "inputs" / "transcripts.csv"
    names = pd.read_csv(csv, dtype=str, keep_default_na=False)["name"].tolist()
    shard = write_shard(work / "zoo-text-shard.csv", names)
    return {
        "names": names,
        "argv": {"shard": str(shard), "transcripts": str(csv)},
        "params": {"text_col": "chinese"},
    }


def acoustic_inputs(fx: Path, work: Path) -> dict:
    """An audio index (the audio stage's CSV) of the zoo's four 16 kHz wavs, and its shard."""
    import pandas as pd

    from mersemi.extract.wav import INDEX_COLUMNS, read_wav

    wavs = sorted((fx / "inputs" / "wavs").glob("*.wav"))
    rows = []
    for w in wavs:
        wave, sr = read_wav(w)
        rows.append({"name": w.stem, "wav": str(w), "valid": True, "reason": "",
                     "duration": len(wave) / sr, "detail": ""})  # fmt: skip
    index = work / "zoo-audio-index.csv"
    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(index, index=False)
    shard = write_shard(work / "zoo-acoustic-shard.csv", [w.stem for w in wavs])
    return {
        "names": [w.stem for w in wavs],
        "argv": {"shard": str(shard), "audio_index": str(index)},
        "params": {"family": "auto"},
    }


def acoustic_takes_families() -> None:
    """SkipPart unless the installed acoustic stage has the `family` option (the acoustic
    families: wav2vec2, WavLM, data2vec-audio, Whisper by config.json's model_type)."""
    from mersemi.extract import acoustic

    if "family" not in {f.name for f in dataclasses.fields(acoustic.Params)}:
        raise SkipPart(
            "the installed acoustic stage has no `family` option (HuBERT only; the acoustic "
            "families are not in this checkout), so wavlm-base cannot run through it"
        )


INPUTS = {"visual": visual_inputs, "text": text_inputs, "acoustic": acoustic_inputs}
# the params of the one-clip-per-call run (the batched run keeps the stage's defaults)
ONE_AT_A_TIME = {
    "visual": {"span_clips": False},
    "text": {"batch_size": 1},
    "acoustic": {"batch_size": 1},
}
MODEL_KEY = {"visual": "checkpoint", "text": "model_dir", "acoustic": "model_dir"}


def run_family(modality: str, fx: Path, work: Path, dev, precision: str, extra: dict):
    """One `run_stage` call -> ({clip: feature}, the file's FeatureMeta)."""
    from mersemi.errors import InputError
    from mersemi.extract.cli import run_stage
    from mersemi.store import read_features

    inputs = INPUTS[modality](fx, work)
    out = work / f"zoo-{modality}-{precision}-{len(list(work.glob('zoo-*.h5')))}.h5"
    params = {
        MODEL_KEY[modality]: str(fx / "models" / MODELS[modality]),
        "device": str(dev),
        "precision": precision,
        "workers": 0,
        **inputs.get("params", {}),
        **extra,
    }
    try:
        run_stage(modality, {**inputs["argv"], "out": str(out), "params": json.dumps(params)})
    except InputError as e:
        if modality == "acoustic" and ("family" in str(e) or "model_type" in str(e)):
            raise SkipPart(f"the installed acoustic stage does not take wavlm-base: {e}") from None
        raise
    fs = read_features(out, modality=modality)
    if list(fs.names) != list(inputs["names"]) or not fs.valid.all():
        raise RuntimeError(f"{modality}: {out} holds {list(fs.names)}, valid {list(fs.valid)}")
    return dict(zip(fs.names, fs.features, strict=True)), fs.meta


def family_step(P: Part, dev, fx: Path, modality: str, precision: str) -> None:
    """The stage on the zoo model at `precision` (auto: the stage's MERTools choice), timed
    batched and one clip per call, both against MERTools' files."""
    import numpy as np

    if modality == "acoustic":
        acoustic_takes_families()
    work = Path(P.args.work)
    resolved = precision if precision != "auto" else "fp32"
    if dev.type == "cuda" and precision == "auto":
        resolved = MERTOOLS_CUDA[modality]
    tol = TOLERANCE[f"{dev.type} {resolved}"]
    t0 = time.perf_counter()
    run_family(modality, fx, work, dev, precision, {})  # warm-up: load, kernels, caches
    first_s = time.perf_counter() - t0
    out: dict = {}
    tb = timed(lambda: out.update(b=run_family(modality, fx, work, dev, precision, {})), dev)
    one = ONE_AT_A_TIME[modality]
    ts = timed(lambda: out.update(s=run_family(modality, fx, work, dev, precision, one)), dev)
    (feats, meta), (single, _) = out["b"], out["s"]
    ref = reference(fx, modality, feats)
    diffs = {n: rel_diff(feats[n], ref[n]) for n in feats}
    diffs_single = {n: rel_diff(single[n], ref[n]) for n in single}
    worst = max([*diffs.values(), *diffs_single.values()])
    family = meta.params.get("family")
    stack = np.stack(list(feats.values()))
    P.row(
        what=f"{modality} {MODELS[modality]} ({family})",
        precision=resolved,
        batched=tb / len(feats),
        single=ts / len(feats),
        unit="s/clip",
        max_rel_vs_mertools=worst,
        per_clip_rel=diffs,
        tolerance=tol,
        within_tolerance=bool(worst <= tol and family == FAMILY[modality]),
        family=family,
        dim=int(meta.dim),
        finite=bool(np.isfinite(stack).all()),
        note=f"{len(feats)} clips, whole run_stage call (load included; first call "
        f"{first_s:.1f} s); max rel vs MERTools {worst:.1e} (tol {tol:g}"
        + ("" if worst <= tol else ", EXCEEDED")
        + ")"
        + ("" if family == FAMILY[modality] else f"; family {family}, not {FAMILY[modality]}"),
    )


def run(P: Part, dev) -> None:
    fx = zoo()
    P.detail("fixture", {"dir": str(fx), "models": MODELS, "tolerance": TOLERANCE})
    steps = [(m, "auto") for m in MODELS]
    if dev.type == "cuda":  # text runs in fp16 there: also fp32, the strict check
        steps.insert(2, ("text", "fp32"))
    for modality, precision in steps:
        what = f"{modality} {MODELS[modality]} {precision}"
        if not P.room(what, 3 if P.args.smoke else 5):
            continue
        try:
            family_step(P, dev, fx, modality, precision)
        except SkipPart as e:
            P.res["skipped_steps"].append(f"{what}: {e}")
            P.save()
