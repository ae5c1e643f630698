"""`ClipEncoder`: a loaded CLIP image encoder with its preprocessing, and the autocast."""

import logging

import numpy as np
import torch
from PIL import Image

from ...device import autocast, autocast_dtype, select_device
from ..common import recipe_precision
from . import Params
from .load import load_encoder

log = logging.getLogger(__name__)


class ClipEncoder:
    """A CLIP image encoder (open_clip state dict, OpenAI TorchScript or HF directory) + the
    eval preprocessing, loaded once."""

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
        if self.p.normalize:
            f = torch.nn.functional.normalize(f, dim=-1)
        return f.cpu().numpy()
