"""`check-models` for the visual stage: the checkpoint's format and family, its tensors against
the architecture (meta device; the TorchScript archive is loaded on CPU), the feature dim.

open_clip, torch and transformers are imported where needed, after the check that they are
installed, so a missing package is a failed check rather than an ImportError."""

from pathlib import Path

from ...errors import InputError
from ...params import parse_params
from ..modelcheck import bad, ok, package_check
from . import Params
from .formats import MODEL_TYPES, checkpoint_format, model_type, resolve_family


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


def _probe(path: Path, fmt: str, p: Params) -> int:
    """Output dim of the checkpoint; raises ValueError naming what does not fit."""
    import torch

    from .load import load_openai_jit

    if fmt == "openai":
        return int(load_openai_jit(path, p.quick_gelu).visual.output_dim)
    if fmt == "hf":
        from transformers import CLIPVisionModelWithProjection

        from .hf import hf_vision_config

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


def _probe_family(path: Path) -> tuple[int, int]:
    """Feature dim (the hidden size) and layer count of a DINOv2 / data2vec-vision / VideoMAE
    directory,
    loaded on CPU as the stage loads it (transformers converts 4.28-era weight names, so the
    file's names are not compared one by one); raises ValueError naming what does not fit."""
    from .families import load_model

    model = load_model(path)
    return int(model.config.hidden_size), len(model.encoder.layer)


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


def _family_guess(p: Params) -> str:
    """The family before any check: `family`, else a directory's config.json `model_type`."""
    if p.family != "auto":
        return p.family
    path = Path(p.checkpoint).expanduser() if p.checkpoint else None
    try:
        if path is not None and path.is_dir():
            return MODEL_TYPES.get(model_type(path), "clip")
    except InputError:
        pass
    return "clip"


def check_model(params) -> list:
    """Packages, the checkpoint's format, its tensors against the architecture (meta device; the
    TorchScript archive is loaded on CPU), and the feature dim against model_name's."""
    try:
        p = params if isinstance(params, Params) else parse_params(Params, params)
    except InputError as e:
        return [bad("visual", "params", str(e), "fix the visual section of the config")]
    checks = []
    if _family_guess(p) == "clip":  # open_clip first, as for every CLIP checkpoint
        checks.append(package_check("visual", "open_clip", "open_clip_torch"))
        if not checks[-1].ok:
            return checks
    if not p.checkpoint:
        fix = "set checkpoint to ViT-L-14.pt, open_clip_pytorch_model.bin or an HF model dir"
        return checks + [bad("visual", "checkpoint", "no checkpoint given", fix)]
    path = Path(p.checkpoint).expanduser()
    if not path.exists():
        fix = "download the weights (README: Real data) or fix the path"
        return checks + [bad("visual", "checkpoint", f"{path} does not exist", fix)]
    try:
        fmt = checkpoint_format(path)
        family = resolve_family(path, fmt, p.family)
    except InputError as e:
        fix = "give a CLIP checkpoint or a DINOv2 / data2vec-vision / VideoMAE directory"
        return checks + [bad("visual", "checkpoint", str(e), fix)]
    if family == "clip" and not checks:
        checks.append(package_check("visual", "open_clip", "open_clip_torch"))
        if not checks[-1].ok:
            return checks
    checks.append(ok("visual", "checkpoint", f"{fmt} ({family}): {path}"))
    if fmt == "hf":
        checks.append(package_check("visual", "transformers"))
        if not checks[-1].ok:
            return checks
    try:
        if fmt == "open_clip":
            from .load import register_model_name

            register_model_name(p)
        dim, n_layers = _probe_family(path) if family != "clip" else (_probe(path, fmt, p), 0)
    except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = "re-download the checkpoint or set model_name to its architecture"
        if family != "clip":
            fix = f"re-download the {family} model directory"
        return checks + [bad("visual", "weights", f"{type(e).__name__}: {msg[:300]}", fix)]
    checks.append(ok("visual", "weights", f"tensors fit the {fmt} {family} architecture"))
    if family != "clip":  # model_name names an open_clip architecture: CLIP only
        from .families import check_layers

        try:
            check_layers(p.layers, n_layers)
        except ValueError as e:
            return checks + [bad("visual", "layers", str(e), "set layers to indices in range")]
        return checks + [ok("visual", "dim", str(dim))]
    import open_clip

    want = (open_clip.get_model_config(p.model_name) or {}).get("embed_dim")
    if want is not None and dim != want:
        detail = f"checkpoint gives {dim}-d features, {p.model_name} gives {want}"
        fix = f"give a {p.model_name} checkpoint or set model_name to its architecture"
        checks.append(bad("visual", "dim", detail, fix))
    else:
        checks.append(ok("visual", "dim", str(dim)))
    return checks
