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

from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    check_recipe,
    meta_params,
    prefetch,
    progress,
    recipe_precision,
    require_path,
    select_device,
    write_feature_shard,
)

log = logging.getLogger(__name__)

HELP = "face crops -> open_clip image features (ViT-L-14: 768), mean over frames"


@dataclass
class VisualParams(StageParams):
    recipe: str = "mertools"  # mertools | mersemi (docs/extraction.md)
    model_name: str = "ViT-L-14"
    # local weights: an open_clip state dict (.bin/.pt/.safetensors), OpenAI's TorchScript
    # ViT-L-14.pt, or a Hugging Face CLIP directory (openai/clip-vit-large-patch14 layout);
    # the format is detected. For the last two the architecture comes from the checkpoint.
    checkpoint: str | None = None
    model_config: str | None = None  # open_clip model config JSON; stem must equal model_name
    pretrained: str | None = None  # open_clip tag (e.g. 'openai'), only where a hub is reachable
    quick_gelu: bool = True  # OpenAI's CLIP weights were trained with QuickGELU
    normalize: bool = False  # L2-normalise each frame's embedding before the mean
    batch_size: int = 64  # frames per encode_image call (batches span clips)
    span_clips: bool = True  # False: one clip's frames per batch (the MERTools way)

    def check(self) -> None:
        check_recipe("visual", self.recipe)
        if self.batch_size < 1:
            raise InputError(f"visual: batch_size must be at least 1, got {self.batch_size}")


Params = VisualParams


def add_arguments(parser) -> None:
    parser.add_argument(
        "--faces", required=True, help="crops HDF5 of the same shard (`mersemi extract faces`)"
    )


def run(args, p: VisualParams) -> None:
    extract_visual(args.shard, args.faces, args.out, p)


def checkpoint_format(path: Path) -> str:
    """'hf' (a Hugging Face CLIP directory), 'openai' (OpenAI's TorchScript archive such as
    ViT-L-14.pt) or 'open_clip' (a state dict: .bin/.pt/.safetensors)."""
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(
                f"visual: checkpoint {path} is a directory without config.json; give a Hugging "
                "Face CLIP directory (config.json + model.safetensors/pytorch_model.bin) or a file"
            )
        return "hf"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        # torch.jit.save writes code/ and constants.pkl; torch.save of a state dict does not
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "openai"
    return "open_clip"


def clip_preprocess(image_size: int, mean, std):
    """The eval preprocessing of OpenAI's CLIP (and of open_clip and HF's CLIPImageProcessor
    for it): bicubic resize of the short side, centre crop, mean/std normalisation. One
    function for every checkpoint format, so the formats differ only in the network."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = PreprocessCfg(size=image_size, mean=tuple(mean), std=tuple(std))
    return image_transform_v2(cfg, is_train=False)


def _hf_preprocess(d: Path, image_size: int):
    """Mean/std/size from HF's preprocessor_config.json (OpenAI's values when absent)."""
    import json

    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    f = d / "preprocessor_config.json"
    cfg = json.loads(f.read_text()) if f.is_file() else {}
    return clip_preprocess(
        image_size,
        cfg.get("image_mean", OPENAI_DATASET_MEAN),
        cfg.get("image_std", OPENAI_DATASET_STD),
    )


def hf_vision_config(d: Path):
    """The vision config of a CLIP directory, with the projection size of the whole model
    (a CLIPConfig's vision_config may lack projection_dim and would default to 512)."""
    from transformers import CLIPConfig, CLIPVisionConfig, PretrainedConfig

    kind = PretrainedConfig.get_config_dict(str(d))[0].get("model_type")
    if kind == "clip":
        cfg = CLIPConfig.from_pretrained(d)
        vcfg = cfg.vision_config
        vcfg.projection_dim = cfg.projection_dim
        return vcfg
    if kind == "clip_vision_model":
        return CLIPVisionConfig.from_pretrained(d)
    raise InputError(
        f"visual: {d / 'config.json'} has model_type {kind!r}, not a CLIP model ('clip' or "
        "'clip_vision_model'); give the openai/clip-vit-large-patch14 directory"
    )


class _HFImageEncoder:
    """transformers' CLIP vision tower + projection, called like open_clip's encode_image."""

    def __init__(self, d: Path, device):
        import torch
        from transformers import CLIPVisionModelWithProjection
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its load report lists every text-tower key as unused
        try:
            self.model, info = CLIPVisionModelWithProjection.from_pretrained(
                d, config=hf_vision_config(d), dtype=torch.float32, output_loading_info=True
            )
        finally:
            hf_logging.set_verbosity(level)
        missing = [k for k in info["missing_keys"] if "position_ids" not in k]
        if missing or info.get("mismatched_keys"):
            bad = missing or [str(k) for k in info["mismatched_keys"]]
            raise ValueError(f"{len(bad)} vision weights missing or of another shape: {bad[:3]}")
        self.model.to(device).eval()
        self.dim = int(self.model.config.projection_dim)
        self.image_size = int(self.model.config.image_size)

    def __call__(self, x):
        return self.model(pixel_values=x).image_embeds


def load_openai_jit(path: Path, quick_gelu: bool = True):
    """OpenAI's TorchScript archive → an open_clip CLIP (fp32, CPU), by open_clip's own
    converter. torch.jit.load runs no pickled Python (weights_only=True cannot read it)."""
    import torch
    from open_clip.model import build_model_from_openai_state_dict

    jit = torch.jit.load(str(path), map_location="cpu")
    # attn_mask: open_clip's causal text mask, a buffer a trace of an open_clip model saves
    sd = {k: v for k, v in jit.state_dict().items() if k != "attn_mask"}
    del jit
    model = build_model_from_openai_state_dict(sd, quick_gelu=quick_gelu, cast_dtype=None)
    return model.float().eval()


class ClipEncoder:
    """A CLIP image encoder (open_clip state dict, OpenAI TorchScript or HF directory) + the
    eval preprocessing, loaded once."""

    def __init__(self, p: VisualParams):
        import open_clip
        import torch

        self.p = p
        self.device = select_device(p.device)
        if p.checkpoint and p.pretrained:
            raise InputError("visual: set either 'checkpoint' or 'pretrained', not both")
        path = Path(p.checkpoint).expanduser() if p.checkpoint else None
        self.format = checkpoint_format(path) if path is not None and path.exists() else "open_clip"
        if self.format == "open_clip":
            _register_model_name(p)
        if p.checkpoint:
            weights = str(require_path(p.checkpoint, "checkpoint", "visual", "CLIP checkpoint"))
            self.model_id = weights
        elif p.pretrained:
            weights = p.pretrained
            self.model_id = f"{p.model_name}:{p.pretrained}"
        else:
            require_path(None, "checkpoint", "visual", "CLIP checkpoint")
        try:
            if self.format == "hf":
                hf = _HFImageEncoder(path, self.device)
                self.model, self._encode, self.dim = hf.model, hf, hf.dim
                self.preprocess = _hf_preprocess(path, hf.image_size)
            else:
                if self.format == "openai":
                    model = load_openai_jit(path, p.quick_gelu).to(self.device)
                    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
                else:
                    model = open_clip.create_model(
                        p.model_name,
                        pretrained=weights,
                        force_quick_gelu=p.quick_gelu,
                        device=self.device,
                        weights_only=True,
                    )
                    cfg = model.visual.preprocess_cfg
                    mean, std = cfg["mean"], cfg["std"]
                model.eval()
                self.model, self._encode = model, model.encode_image
                self.dim = int(model.visual.output_dim)
                self.preprocess = clip_preprocess(model.visual.image_size[0], mean, std)
        except (RuntimeError, ValueError, OSError, KeyError, EOFError, pickle.UnpicklingError) as e:
            raise InputError(
                f"visual: cannot load {p.model_name} from {weights} ({self.format}): {e}"
            ) from None
        self.precision = recipe_precision(p.recipe, p.precision, "fp32")
        self.amp = autocast_dtype(self.device, self.precision)
        self._torch = torch
        log.info(
            "visual: %s (%s) on %s (autocast %s), dim %d",
            self.model_id, self.format, self.device, self.amp, self.dim,
        )  # fmt: skip

    def prepare(self, crops: np.ndarray) -> list:
        """uint8 F×S×S×3 RGB → list of preprocessed tensors (runs in decode threads)."""
        from PIL import Image

        return [self.preprocess(Image.fromarray(c)) for c in crops]

    def encode(self, units: list) -> np.ndarray:
        torch = self._torch
        x = torch.stack(units).to(self.device, non_blocking=True)
        with torch.inference_mode(), autocast(self.device, self.precision):
            f = self._encode(x)
        f = f.float()
        if self.p.normalize:
            f = torch.nn.functional.normalize(f, dim=-1)
        return f.cpu().numpy()


def _register_model_name(p: VisualParams) -> None:
    import open_clip

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
            "checkpoint_format": enc.format,
            "faces": crops_file.params,
            "autocast": str(enc.amp).replace("torch.", "") if enc.amp else "fp32",
        },
    )
    write_feature_shard(out, meta, outcome, feats, "visual")
    return outcome


__all__ = ["ClipEncoder", "VisualParams", "extract_visual"]


# --------------------------------------------------------------------------- model check


def _shape_problem(expected: dict, found: dict, strict: bool = True) -> str | None:
    """Missing / mismatched (/ unexpected, if strict) tensors between two name → shape maps."""
    missing = sorted(set(expected) - set(found))
    bad_shape = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    extra = sorted(set(found) - set(expected)) if strict else []
    if not (missing or bad_shape or extra):
        return None
    parts = []
    for what, keys in (("missing", missing), ("unexpected", extra)):
        if keys:
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:2])}{', ...' * (len(keys) > 2)})")
    if bad_shape:
        k = bad_shape[0]
        parts.append(
            f"{len(bad_shape)} of another shape ({k}: {tuple(found[k])} vs {tuple(expected[k])})"
        )
    return "; ".join(parts)


def _probe(path: Path, fmt: str, p: VisualParams) -> int:
    """Output dim of the checkpoint; raises ValueError naming what does not fit."""
    import torch

    if fmt == "openai":
        return int(load_openai_jit(path, p.quick_gelu).visual.output_dim)
    if fmt == "hf":
        from transformers import CLIPVisionModelWithProjection

        vcfg = hf_vision_config(path)
        with torch.device("meta"):
            model = CLIPVisionModelWithProjection(vcfg)
        expected = {k: v.shape for k, v in model.state_dict().items() if "position_ids" not in k}
        found = _hf_weight_shapes(path)
        problem = _shape_problem(expected, found, strict=False)  # text tower keys are extra
        if problem:
            raise ValueError(f"weights do not fit config.json: {problem}")
        return int(vcfg.projection_dim)
    import open_clip
    from open_clip.factory import load_state_dict

    with torch.device("meta"):
        model = open_clip.create_model(p.model_name, force_quick_gelu=p.quick_gelu, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    sd = load_state_dict(str(path), device="cpu", weights_only=True)
    problem = _shape_problem(expected, {k: v.shape for k, v in sd.items()})
    if problem:
        raise ValueError(f"state dict does not fit open_clip {p.model_name}: {problem}")
    return int(model.visual.output_dim)


def _hf_weight_shapes(d: Path) -> dict:
    """name → shape of the weights in a HF directory, read from the file index (safetensors
    header) or a memory-mapped pytorch_model.bin."""
    st, pt = d / "model.safetensors", d / "pytorch_model.bin"
    if st.is_file():
        from safetensors import safe_open

        with safe_open(str(st), framework="pt") as f:
            return {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118
    if pt.is_file():
        import torch

        sd = torch.load(pt, map_location="cpu", weights_only=True, mmap=True)
        return {k: v.shape for k, v in sd.items()}
    raise ValueError(f"no model.safetensors or pytorch_model.bin in {d}")


def check_model(params) -> list:
    """Packages, the checkpoint's format, its tensors against the architecture (meta device; the
    TorchScript archive is loaded on CPU), and the feature dim against model_name's."""
    from ..params import parse_params
    from .modelcheck import bad, ok, package_check

    try:
        p = params if isinstance(params, VisualParams) else parse_params(VisualParams, params)
    except InputError as e:
        return [bad("visual", "params", str(e), "fix the visual section of the config")]
    checks = [package_check("visual", "open_clip", "open_clip_torch")]
    if not checks[-1].ok:
        return checks
    if not p.checkpoint:
        fix = "set checkpoint to ViT-L-14.pt, open_clip_pytorch_model.bin or an HF CLIP dir"
        return checks + [bad("visual", "checkpoint", "no checkpoint given", fix)]
    path = Path(p.checkpoint).expanduser()
    if not path.exists():
        fix = "download the weights (README: Real data) or fix the path"
        return checks + [bad("visual", "checkpoint", f"{path} does not exist", fix)]
    try:
        fmt = checkpoint_format(path)
    except InputError as e:
        return checks + [bad("visual", "checkpoint", str(e), "give a CLIP checkpoint")]
    checks.append(ok("visual", "checkpoint", f"{fmt}: {path}"))
    if fmt == "hf":
        checks.append(package_check("visual", "transformers"))
        if not checks[-1].ok:
            return checks
    try:
        if fmt == "open_clip":
            _register_model_name(p)
        dim = _probe(path, fmt, p)
    except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = "re-download the checkpoint or set model_name to its architecture"
        return checks + [bad("visual", "weights", f"{type(e).__name__}: {msg[:300]}", fix)]
    checks.append(ok("visual", "weights", f"tensors fit the {fmt} architecture"))
    import open_clip

    want = (open_clip.get_model_config(p.model_name) or {}).get("embed_dim")
    if want is not None and dim != want:
        detail = f"checkpoint gives {dim}-d features, {p.model_name} gives {want}"
        fix = f"give a {p.model_name} checkpoint or set model_name to its architecture"
        checks.append(bad("visual", "dim", detail, fix))
    else:
        checks.append(ok("visual", "dim", str(dim)))
    return checks
