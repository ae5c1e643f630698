"""Stage `visual`: face crops → image (or video) encoder features, one vector per clip.

Families (`family`, `auto`: CLIP for an open_clip or OpenAI file, else the `model_type` of a
Hugging Face directory's config.json), each by MERTools' recipe for it (docs/extraction.md,
"Visual encoder families"): `clip` (every format below; other sizes via an HF CLIP directory),
`dinov2` and `data2vec-vision` (frame-wise, the last layer summed over its tokens; DINOv2 on
64 frames sampled as MERTools' `resample_frames_uniform`) and `videomae` (16 sampled frames,
the tokens of each tubelet averaged). The non-CLIP families use transformers' own
`AutoImageProcessor` of the model directory (`families.py`).

open_clip `ViT-L-14` (768) from a local checkpoint (`checkpoint`, a state dict such as
`open_clip_pytorch_model.bin` of timm/vit_large_patch14_clip_224.openai, or the file open_clip
caches for the `openai` tag), optionally with a model config JSON registered through
`open_clip.add_model_config` (`model_config`; its file stem must equal `model_name`), or the
`pretrained` tag where a hub is reachable. open_clip's own eval preprocessing; `encode_image`
on batches that span clips; mean over a clip's frames.

Recipes (docs/extraction.md): `mertools` (default) runs fp32 on CUDA too, as MERTools'
`extract_vision_huggingface.py` does, on every crop the faces stage kept (under `mertools`
that is every frame, the all-zero crops of failed frames included); `mersemi` autocasts to
bf16/fp16 on CUDA. The preprocessing (bicubic resize, centre crop, CLIP mean/std) and the
embedding (projected post-LayerNorm CLS token, no L2 normalisation) are MERTools' under both.
"""

from dataclasses import dataclass
from typing import Literal

from ...errors import InputError
from ...params import AT_LEAST_1, option
from ..common import ALL_LAYERS, Recipe, StageParams, recipe_option

STAGE = "visual"
HELP = "face crops -> image features (CLIP ViT-L-14: 768; DINOv2, data2vec-vision, VideoMAE)"

Family = Literal["auto", "clip", "dinov2", "data2vec-vision", "videomae"]


@dataclass
class Params(StageParams):
    recipe: Recipe = recipe_option()
    family: Family = option(
        "auto",
        help=(
            "encoder family, each with MERTools' recipe for it; `auto`: CLIP for an open_clip "
            "or OpenAI file, else the `model_type` of the HF directory's config.json"
        ),
    )
    layers: list[int] | Literal["all"] | None = option(
        None,
        help=(
            "DINOv2 / data2vec-vision / VideoMAE: states to sum (0 = embeddings, k = output of "
            "layer k, -1 = the last layer's, before any final norm); null: MERTools' (-1; "
            "VideoMAE: `last_hidden_state`, after its final LayerNorm); all: MERTools' and every "
            "state stored too (the layer probe). Not for CLIP"
        ),
    )
    dinov2_interpolation: Literal["4.32", "installed"] = option(
        "4.32",
        help=(
            "DINOv2's position-embedding interpolation: `4.32`, transformers 4.32's (bicubic, "
            "scale_factor (n+0.1)/37; MERTools' run) or the installed transformers' own"
        ),
    )
    processor_backend: Literal["pil", "torchvision"] = option(
        "pil",
        help=(
            "backend of the model directory's AutoImageProcessor (not CLIP): `pil`, as "
            "MERTools' transformers, or `torchvision` (faster; other resampling)"
        ),
    )
    model_name: str = option(
        "ViT-L-14",
        help=(
            "open_clip architecture name (an open_clip state dict is built as this; for the other "
            "formats the architecture comes from the checkpoint and `check-models` compares its "
            "feature dim with this name's)"
        ),
    )
    checkpoint: str | None = option(
        None,
        help=(
            "local weights, format detected: an open_clip state dict "
            "(`open_clip_pytorch_model.bin`, `.pt`, `.safetensors`), OpenAI's TorchScript "
            "`ViT-L-14.pt`, or a Hugging Face directory: CLIP (`openai/clip-vit-large-patch14`, "
            "other sizes too), DINOv2, data2vec-vision or VideoMAE; required unless `pretrained`"
        ),
    )
    model_config: str | None = option(
        None,
        help=(
            "open_clip model config JSON, registered with `open_clip.add_model_config`; its file "
            "stem must equal `model_name` (built-in names need none)"
        ),
    )
    pretrained: str | None = option(
        None, help="open_clip tag such as `openai`, only where a hub is reachable"
    )
    quick_gelu: bool = option(True, help="OpenAI's CLIP weights use QuickGELU (`force_quick_gelu`)")
    normalize: bool = option(
        False, help="L2-normalise each frame embedding before the mean (MERTools does not)"
    )
    batch_size: int = option(
        64,
        range=AT_LEAST_1,
        help=(
            "frames per model call (VideoMAE: batch_size // 16 videos, at least 1); batches "
            "span clips"
        ),
    )
    span_clips: bool = option(
        True, help="`false`: one clip's frames per batch (the MERTools way; same numbers)"
    )

    def check(self) -> None:
        why = layers_error(self.layers)
        if why:
            raise InputError(why)


def layers_error(layers) -> str | None:
    """What is wrong with a `layers` word (None: fine; lists are checked against the model)."""
    if isinstance(layers, str) and layers != ALL_LAYERS:
        return f"layers: {layers!r} is not null, a list of indices or {ALL_LAYERS!r}"
    return None


def add_arguments(parser) -> None:
    parser.add_argument(
        "--faces", required=True, help="crops HDF5 of the same shard (`mersemi extract faces`)"
    )


def run(args, params: Params):
    """Features of the shard's crops (`args.faces`) -> `args.out`; returns the Outcome.
    `args.encoder` (optional) reuses a loaded encoder (`encoder.make_encoder`; benchmarks,
    tests)."""
    from .features import run as work  # torch and open_clip only when the stage runs

    return work(args, params)


def check_model(params) -> list:
    from .check import check_model as check

    return check(params)
