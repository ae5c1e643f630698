"""The visual encoders: `ClipEncoder` (CLIP in any format) and `FamilyEncoder` (an HF DINOv2,
data2vec-vision or VideoMAE directory), each a loaded model with its preprocessing and the
autocast; `make_encoder(params)` picks by the family (`formats.resolve_family`)."""

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...device import autocast, autocast_dtype, select_device
from ...errors import InputError
from ..common import departures, recipe_precision, require_path
from . import STAGE, Params
from .formats import checkpoint_format, resolve_family
from .load import load_encoder

log = logging.getLogger(__name__)

# MERTools' values of the options that change the non-CLIP families' numbers
MERTOOLS = {"dinov2_interpolation": "4.32", "processor_backend": "pil"}


class ClipEncoder:
    """A CLIP image encoder (open_clip state dict, OpenAI TorchScript or HF directory) + the
    eval preprocessing, loaded once."""

    family = "clip"
    layers_desc = "image embedding (encode_image)"
    pooling_desc = "mean over face frames"
    frames_per_unit = 1
    departures: dict = {}
    n_stored = 0  # `layers: all` is for the other families

    def __init__(self, p: Params):
        self.p = p
        self.device = select_device(p.device)
        loaded = load_encoder(p, self.device)
        self.model, self._encode, self.dim = loaded.model, loaded.encode, loaded.dim
        self.preprocess, self.format, self.model_id = (
            loaded.preprocess,
            loaded.format,
            loaded.model_id,
        )
        self.precision = recipe_precision(p.recipe, p.precision, "fp32")
        self.amp = autocast_dtype(self.device, self.precision)
        log.info(
            "visual: %s (%s) on %s (autocast %s), dim %d",
            self.model_id, self.format, self.device, self.amp, self.dim,
        )  # fmt: skip

    def prepare(self, crops: np.ndarray) -> list:
        """uint8 F×S×S×3 RGB → list of preprocessed tensors (runs in decode threads)."""
        return [self.preprocess(Image.fromarray(c)) for c in crops]

    def encode(self, units: list) -> np.ndarray:
        x = torch.stack(units).to(self.device, non_blocking=True)
        with torch.inference_mode(), autocast(self.device, self.precision):
            f = self._encode(x)
        f = f.float()
        if self.p.normalize:  # each vector of a unit (`layers: all`: one per state)
            f = torch.nn.functional.normalize(f.reshape(len(f), -1, self.dim), dim=-1)
            f = f.flatten(1)
        return f.cpu().numpy()


class FamilyEncoder(ClipEncoder):
    """An HF vision encoder directory of another family than CLIP, with MERTools' frame
    sampling, layer and pooling for it (`families.py`); the same interface as ClipEncoder."""

    def __init__(self, p: Params, path: Path, family: str):
        from .families import HFVisionEncoder  # transformers: these families only

        self.p, self.family, self.format, self.model_id = p, family, "hf", str(path)
        self.device = select_device(p.device)
        keys = dict(MERTOOLS) if family == "dinov2" else {"processor_backend": "pil"}
        self.departures = departures(STAGE, p, keys)
        try:
            self.hf = HFVisionEncoder(path, family, p, self.device)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise InputError(f"visual: cannot load the {family} model {path}: {e}") from None
        self.model, self._encode, self.dim = self.hf.model, self.hf, self.hf.dim
        self.prepare = self.hf.prepare
        self.layers_desc = self.hf.layers_desc
        self.pooling_desc = self.hf.recipe.pooling
        self.n_stored = self.hf.n_stored
        self.frames_per_unit = self.hf.frames if self.hf.recipe.video else 1
        self.precision = recipe_precision(p.recipe, p.precision, "fp32")
        self.amp = autocast_dtype(self.device, self.precision)
        log.info(
            "visual: %s (%s) on %s (autocast %s), dim %d",
            self.model_id, family, self.device, self.amp, self.dim,
        )  # fmt: skip


def make_encoder(p: Params) -> ClipEncoder:
    """The encoder `p` names: its family from `p.family` or the checkpoint (CLIP for a file,
    config.json's `model_type` for a directory)."""
    if p.checkpoint and Path(p.checkpoint).expanduser().exists():
        path = Path(p.checkpoint).expanduser()
        family = resolve_family(path, checkpoint_format(path), p.family)
        if family != "clip":
            return FamilyEncoder(p, path, family)
    elif p.family not in ("auto", "clip"):
        require_path(p.checkpoint, "checkpoint", "visual", f"{p.family} model directory")
    if p.layers is not None:
        raise InputError(
            "visual: layers applies to the dinov2, data2vec-vision and videomae families; a "
            "CLIP feature is its image embedding (leave layers null)"
        )
    return ClipEncoder(p)
