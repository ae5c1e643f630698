"""The visual stage's work: every clip's face crops through the encoder (CLIP, DINOv2,
data2vec-vision, VideoMAE), mean over its units (frames; VideoMAE: its one video)."""

import h5py

from ...errors import InputError
from ...store import FeatureMeta
from ..common import (
    MeanPool,
    Outcome,
    SpanningBatcher,
    meta_params,
    prefetch,
    progress,
    read_shard,
    write_feature_shard,
)
from ..crops import open_crops
from . import STAGE, Params
from .encoder import make_encoder


def run(args, p: Params) -> Outcome:
    """Features of every clip in the crops file `args.faces`; returns the Outcome.

    `args.encoder` lets a caller (benchmark, test) reuse a loaded model; the CLI loads it once
    per shard.
    """
    shard, faces, out = args.shard, args.faces, args.out
    enc = getattr(args, "encoder", None) or make_encoder(p)
    crops_file = open_crops(faces)
    shard_names = [c.name for c in read_shard(shard)]
    if shard_names != crops_file.names:
        raise InputError(
            f"visual: crops file {faces} holds {len(crops_file.names)} clips that do not match "
            f"the {len(shard_names)} clips of shard {shard} (rerun the faces stage)"
        )
    outcome = Outcome(crops_file.names)
    for i, (v, r) in enumerate(zip(crops_file.valid, crops_file.reasons, strict=True)):
        if not v:
            outcome.fail(i, r or "no_face", "from faces stage")
    todo = [i for i in range(len(outcome.names)) if outcome.valid[i]]
    k = enc.n_stored  # `layers: all`: every state's vector after the feature
    pool = MeanPool(len(outcome.names), enc.dim * (1 + k))
    batcher = SpanningBatcher(max(1, p.batch_size // enc.frames_per_unit))
    off = crops_file.offsets

    with h5py.File(crops_file.path, "r") as h5:
        crops_ds = h5["crops"]

        def load(i: int):
            return enc.prepare(crops_ds[off[i] : off[i + 1]])

        for i, units, _err in progress(
            prefetch(load, todo, p.workers, p.prefetch), total=len(todo), desc="visual"
        ):
            for owners, batch in batcher.add(i, units):
                pool.add(owners, enc.encode(batch))
            if not p.span_clips:
                for owners, batch in batcher.flush():
                    pool.add(owners, enc.encode(batch))
        for owners, batch in batcher.flush():
            pool.add(owners, enc.encode(batch))

    feats = pool.mean()
    stack = feats[:, enc.dim :].reshape(len(feats), k, enc.dim) if k else None
    feats = feats[:, : enc.dim]
    meta = FeatureMeta(
        modality="visual",
        model=enc.model_id,
        layers=enc.layers_desc,
        pooling=enc.pooling_desc,
        dim=enc.dim,
        params={
            **meta_params(p),
            "checkpoint_format": enc.format,
            "family": enc.family,  # the one resolved from `auto`
            **({"stored_layers": list(range(k))} if k else {}),
            **({"departures": enc.departures} if enc.departures else {}),
            "faces": crops_file.params,
            "autocast": str(enc.amp).replace("torch.", "") if enc.amp else "fp32",
        },
    )
    write_feature_shard(out, meta, outcome, feats, STAGE, stack)
    return outcome
