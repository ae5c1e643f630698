"""Hugging Face vision encoders beyond CLIP, each with MERTools' recipe for its family.

MERTools' `MER2024/feature_extraction/visual/extract_vision_huggingface.py` (zeroQiaoba/MERTools
@ 89120b7; line numbers as shared/fixtures/mertools-zoo/README.md gives them) reads the face
crops as RGB, runs `AutoImageProcessor` of the model directory and then, per family:

- `data2vec-vision` (lines 162-171): every crop; the last layer's output (`hidden_states[-1]`)
  **summed** over its tokens (CLS + patches); the mean over the frames;
- `dinov2` (lines 173-183): 64 frames by `resample_frames_uniform`; the last layer's output,
  before Dinov2's final LayerNorm, summed over the tokens; the mean over the 64 frames
  (repeated indices count again);
- `videomae` (lines 185-200): 16 frames by `resample_frames_uniform` as one video;
  `last_hidden_state` (after the final LayerNorm where `use_mean_pooling` is false), averaged
  over the patches of each tubelet; the mean over the tubelets.

The layer outputs are taken with forward hooks on the encoder layers (`extract.hidden`), so the
tensor a "layer" names does not depend on what a transformers release puts in `hidden_states`.
"""

import math
import types
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModel
from transformers.utils import logging as hf_logging

from ..common import ALL_LAYERS, stored_layers_note
from ..hidden import LayerStates


@dataclass(frozen=True)
class FamilyRecipe:
    frames: int | None  # frames sampled per clip (resample_frames_uniform); None: every crop
    video: bool  # the sampled frames go in as one video (one unit per clip)
    pooling: str  # for the file attrs
    default_layers: str  # MERTools' choice, for the file attrs


RECIPES = {
    "data2vec-vision": FamilyRecipe(
        None, False, "sum over the tokens (CLS + patches) of each frame, mean over every frame",
        "last layer's output (hidden_states[-1])",
    ),
    "dinov2": FamilyRecipe(
        64, False,
        "sum over the tokens (CLS + patches) of each frame, mean over 64 frames "
        "(resample_frames_uniform, the last index repeated)",
        "last layer's output, before the final LayerNorm (hidden_states[-1])",
    ),
    "videomae": FamilyRecipe(
        16, True,
        "16 frames (resample_frames_uniform) as one video, mean over each tubelet's patches, "
        "mean over the tubelets",
        "last_hidden_state (after the final LayerNorm, if the model has one)",
    ),
}  # fmt: skip


def resample_frames_uniform(n: int, k: int) -> list[int]:
    """MERTools' `resample_frames_uniform(frames, nframe=k)` (lines 74-86) as frame indices:
    with n < k frames all of them, then the last index repeated up to k; else floor(i·n/k),
    i = 0..k-1 (frames in between are skipped)."""
    if n < 1:
        raise ValueError("no frames to sample")
    if n < k:
        return list(range(n)) + [n - 1] * (k - n)
    return [i * n // k for i in range(k)]


def interpolate_pos_encoding_432(self, embeddings: torch.Tensor, height: int, width: int):
    """transformers 4.32's `Dinov2Embeddings.interpolate_pos_encoding`, the one MERTools' DINOv2
    features were made with (4.32 is the first release with DINOv2).

    The position grid (37 × 37 for 518 px) is resized bicubically with `scale_factor`
    ((height // patch + 0.1) / 37, the DINO trick against rounding) instead of transformers 5's
    `size=(height // patch, width // patch)`; the output has the same size, but torch maps the
    coordinates by the scale factor given, so the values differ (~2e-3 relative in the zoo
    fixture's features). Bound to a model's `embeddings` with `types.MethodType`
    (`use_interpolation_432`); run in float32 as transformers 5 does."""
    num_patches = embeddings.shape[1] - 1
    num_positions = self.position_embeddings.shape[1] - 1
    if num_patches == num_positions and height == width:
        return self.position_embeddings
    class_pos_embed = self.position_embeddings[:, :1]
    patch_pos_embed = self.position_embeddings[:, 1:]
    dim = embeddings.shape[-1]
    patch = self.config.patch_size
    h, w = height // patch + 0.1, width // patch + 0.1
    side = int(math.sqrt(num_positions))
    grid = patch_pos_embed.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid.to(torch.float32),
        scale_factor=(float(h / math.sqrt(num_positions)), float(w / math.sqrt(num_positions))),
        mode="bicubic",
        align_corners=False,
    ).to(patch_pos_embed.dtype)
    if int(h) != grid.shape[-2] or int(w) != grid.shape[-1]:
        raise ValueError("Width or height does not match with the interpolated position embeddings")
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((class_pos_embed, grid), dim=1)


def use_interpolation_432(model) -> None:
    """Make a Dinov2Model interpolate its position embeddings as transformers 4.32 did."""
    emb = model.embeddings
    if not hasattr(emb, "interpolate_pos_encoding"):
        raise ValueError(f"{type(emb).__name__} has no interpolate_pos_encoding to replace")
    emb.interpolate_pos_encoding = types.MethodType(interpolate_pos_encoding_432, emb)


def check_layers(layers: list[int] | str | None, n_layers: int) -> list[int] | None:
    """`layers` as indices into the n_layers + 1 states (0 = embeddings, k = layer k's output;
    "all": every one)."""
    if layers is None:
        return None
    if layers == ALL_LAYERS:
        return list(range(n_layers + 1))
    if not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
        raise ValueError(f"layers must be a non-empty list of integers or null, got {layers!r}")
    bad = [i for i in layers if not -(n_layers + 1) <= i <= n_layers]
    if bad:
        raise ValueError(
            f"layers {bad} out of range: the model has {n_layers} layers, so indices run from "
            f"{-(n_layers + 1)} to {n_layers} (0 = embeddings, -1 = the last layer's output)"
        )
    return [i % (n_layers + 1) for i in layers]


def load_model(d):
    """`AutoModel.from_pretrained(d)` in float32 on CPU (transformers' own key conversion, so
    4.28-era names load); a weight missing or of another shape is a ValueError."""
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModel.from_pretrained(d, dtype=torch.float32, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
    missing = [k for k in info["missing_keys"] if "position_ids" not in k]
    if missing or info.get("mismatched_keys"):
        bad = missing or [str(k) for k in info["mismatched_keys"]]
        raise ValueError(f"{len(bad)} weights missing or of another shape: {bad[:3]}")
    return model


class HFVisionEncoder:
    """A DINOv2 / data2vec-vision / VideoMAE directory with its image processor, on `device`.

    `prepare(crops)` -> units (one per sampled frame; VideoMAE: one video per clip);
    `__call__(batch)` -> one pooled vector per unit (a clip's mean over its units is its
    feature); with `layers: all`, that vector followed by each state's, pooled alike
    ((1 + n_stored) x dim per unit: the mean over units is linear)."""

    def __init__(self, d, family: str, p, device):
        self.family, self.recipe = family, RECIPES[family]
        self.processor = AutoImageProcessor.from_pretrained(d, backend=p.processor_backend)
        self.model = load_model(d)
        if family == "dinov2" and p.dinov2_interpolation == "4.32":
            use_interpolation_432(self.model)
        self.model.to(device).eval()
        cfg = self.model.config
        self.layers = list(self.model.encoder.layer)
        self.all_layers = p.layers == ALL_LAYERS
        self.layer_ids = None if self.all_layers else check_layers(p.layers, len(self.layers))
        self.n_stored = len(self.layers) + 1 if self.all_layers else 0
        self.dim = int(cfg.hidden_size)
        self.frames = int(cfg.num_frames) if self.recipe.video else self.recipe.frames
        self.tubelets = self.frames // int(cfg.tubelet_size) if self.recipe.video else None

    @property
    def layers_desc(self) -> str:
        if self.all_layers:
            return (
                f"{self.recipe.default_layers}; {stored_layers_note(self.n_stored)} (0 = "
                "embeddings, before any final norm)"
            )
        if self.layer_ids is None:
            return self.recipe.default_layers
        return (
            f"sum of states {self.layer_ids} of {len(self.layers) + 1} (0 = embeddings, "
            "k = layer k's output, before any final norm)"
        )

    def prepare(self, crops: np.ndarray) -> list:
        """uint8 F×S×S×3 RGB crops of one clip -> its units (preprocessed tensors)."""
        if self.frames is not None:
            crops = crops[resample_frames_uniform(len(crops), self.frames)]
        if self.recipe.video:
            return [self.processor(list(crops), return_tensors="pt")["pixel_values"][0]]
        return list(self.processor(images=list(crops), return_tensors="pt")["pixel_values"])

    def _states(self, cap: LayerStates, out) -> torch.Tensor:
        if self.layer_ids is None:
            return out.last_hidden_state if self.recipe.video else cap.last_output
        states = cap.states(out.last_hidden_state, post_norm=False)
        return torch.stack([states[i] for i in self.layer_ids]).sum(0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with LayerStates(self.layers) as cap:
            out = self.model(pixel_values=x)
            h = self._states(cap, out)
            if self.all_layers:  # B x (1 + L+1) x T x D
                every = cap.states(out.last_hidden_state, post_norm=False)
                h = torch.stack([h, *every], 1)
        return self._pool(h).flatten(1)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        """(..., T, D) token states -> (..., D): MERTools' pooling for the family."""
        if not self.recipe.video:
            return h.sum(-2)  # every token, the CLS included (MERTools line 170 / 182)
        *lead, t, d = h.shape
        return h.reshape(*lead, self.tubelets, t // self.tubelets, d).mean(-2).mean(-2)
