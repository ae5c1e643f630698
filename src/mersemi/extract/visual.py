"""Stage `visual`: face crops → CLIP image features, mean over a clip's frames.

open_clip `ViT-L-14` (768) from a local checkpoint (`checkpoint`, a state dict such as
`open_clip_pytorch_model.bin` of timm/vit_large_patch14_clip_224.openai, or the file open_clip
caches for the `openai` tag), optionally with a model config JSON registered through
`open_clip.add_model_config` (`model_config`; its file stem must equal `model_name`), or the
`pretrained` tag where a hub is reachable. open_clip's own eval preprocessing; `encode_image`
on batches that span clips; autocast bf16/fp16 on CUDA; mean over a clip's frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..store import FeatureMeta
from .common import (
    MeanPool,
    Outcome,
    SpanningBatcher,
    StageParams,
    autocast,
    autocast_dtype,
    meta_params,
    prefetch,
    progress,
    require_path,
    select_device,
    write_feature_shard,
)

log = logging.getLogger(__name__)

HELP = "face crops -> open_clip image features (ViT-L-14: 768), mean over frames"


@dataclass
class VisualParams(StageParams):
    model_name: str = "ViT-L-14"
    checkpoint: str | None = None  # local weights file (state dict)
    model_config: str | None = None  # open_clip model config JSON; stem must equal model_name
    pretrained: str | None = None  # open_clip tag (e.g. 'openai'), only where a hub is reachable
    quick_gelu: bool = True  # OpenAI's CLIP weights were trained with QuickGELU
    normalize: bool = False  # L2-normalise each frame's embedding before the mean
    batch_size: int = 64  # frames per encode_image call (batches span clips)
    span_clips: bool = True  # False: one clip's frames per batch (the MERTools way)

    def check(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"visual: batch_size must be at least 1, got {self.batch_size}")


Params = VisualParams


def add_arguments(parser) -> None:
    parser.add_argument(
        "--faces", required=True, help="crops HDF5 of the same shard (`mersemi extract faces`)"
    )


def run(args, p: VisualParams) -> None:
    extract_visual(args.shard, args.faces, args.out, p)


class ClipEncoder:
    """An open_clip model + its eval preprocessing, loaded once."""

    def __init__(self, p: VisualParams):
        import open_clip
        import torch

        self.p = p
        self.device = select_device(p.device)
        if p.checkpoint and p.pretrained:
            raise InputError("visual: set either 'checkpoint' or 'pretrained', not both")
        if p.model_config:
            cfg = require_path(p.model_config, "model_config", "visual", "model config")
            if cfg.stem != p.model_name:
                raise InputError(
                    f"visual: model_config {cfg} registers model {cfg.stem!r} but model_name is "
                    f"{p.model_name!r}; set model_name to {cfg.stem!r}"
                )
            open_clip.add_model_config(cfg)
        if p.model_name not in open_clip.list_models():
            raise InputError(
                f"visual: unknown open_clip model {p.model_name!r}; set 'model_config' to its "
                "config JSON or use a built-in name such as 'ViT-L-14'"
            )
        if p.checkpoint:
            weights = str(require_path(p.checkpoint, "checkpoint", "visual", "CLIP checkpoint"))
            self.model_id = weights
        elif p.pretrained:
            weights = p.pretrained
            self.model_id = f"{p.model_name}:{p.pretrained}"
        else:
            require_path(None, "checkpoint", "visual", "CLIP checkpoint")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                p.model_name,
                pretrained=weights,
                force_quick_gelu=p.quick_gelu,
                device=self.device,
                weights_only=True,
            )
        except (RuntimeError, ValueError, OSError, KeyError) as e:
            raise InputError(f"visual: cannot load {p.model_name} from {weights}: {e}") from None
        model.eval()
        self.model, self.preprocess = model, preprocess
        self.dim = int(model.visual.output_dim)
        self.amp = autocast_dtype(self.device, p.precision)
        self._torch = torch
        log.info(
            "visual: %s from %s on %s (autocast %s), dim %d",
            p.model_name, self.model_id, self.device, self.amp, self.dim,
        )  # fmt: skip

    def prepare(self, crops: np.ndarray) -> list:
        """uint8 F×S×S×3 RGB → list of preprocessed tensors (runs in decode threads)."""
        from PIL import Image

        return [self.preprocess(Image.fromarray(c)) for c in crops]

    def encode(self, units: list) -> np.ndarray:
        torch = self._torch
        x = torch.stack(units).to(self.device, non_blocking=True)
        with torch.inference_mode(), autocast(self.device, self.p.precision):
            f = self.model.encode_image(x)
        f = f.float()
        if self.p.normalize:
            f = torch.nn.functional.normalize(f, dim=-1)
        return f.cpu().numpy()


def extract_visual(shard, faces, out, p: VisualParams, encoder: ClipEncoder | None = None):
    """Features of every clip in the crops file `faces`; returns the Outcome.

    `encoder` lets a caller (benchmark) reuse a loaded model; the CLI loads it once per shard.
    """
    import h5py

    from .common import read_shard
    from .faces import open_crops

    enc = encoder or ClipEncoder(p)
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
    pool = MeanPool(len(outcome.names), enc.dim)
    batcher = SpanningBatcher(p.batch_size)
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
    meta = FeatureMeta(
        modality="visual",
        model=enc.model_id,
        layers="image embedding (encode_image)",
        pooling="mean over face frames",
        dim=enc.dim,
        params={
            **meta_params(p),
            "faces": crops_file.params,
            "autocast": str(enc.amp).replace("torch.", "") if enc.amp else "fp32",
        },
    )
    write_feature_shard(out, meta, outcome, feats, "visual")
    return outcome


__all__ = ["ClipEncoder", "VisualParams", "extract_visual"]
