"""Stage `visual`: face crops → CLIP image features, mean over a clip's frames.

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

from ...params import AT_LEAST_1, option
from ..common import Recipe, StageParams, recipe_option

STAGE = "visual"
HELP = "face crops -> open_clip image features (ViT-L-14: 768), mean over frames"


@dataclass
class Params(StageParams):
    recipe: Recipe = recipe_option()
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
            "`ViT-L-14.pt`, or a Hugging Face CLIP directory (`openai/clip-vit-large-patch14`); "
            "required unless `pretrained`"
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
        64, range=AT_LEAST_1, help="frames per `encode_image` call; batches span clips"
    )
    span_clips: bool = option(
        True, help="`false`: one clip's frames per batch (the MERTools way; same numbers)"
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--faces", required=True, help="crops HDF5 of the same shard (`mersemi extract faces`)"
    )


def run(args, params: Params):
    """Features of the shard's crops (`args.faces`) -> `args.out`; returns the Outcome.
    `args.encoder` (optional) reuses a loaded `encoder.ClipEncoder` (benchmarks, tests)."""
    from .features import run as work  # torch and open_clip only when the stage runs

    return work(args, params)


def check_model(params) -> list:
    from .check import check_model as check

    return check(params)
