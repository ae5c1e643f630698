"""`check-models` for the text stage: config, tokenizer, weight files, without the weights."""

from ...errors import InputError
from ..modelcheck import bad, ok, package_check
from ..models import require_model_dir
from . import STAGE, Params
from .family import detect_family, hidden_state_indices
from .llm_load import base_model_class, load_tokenizer, read_json, tokenizer_kind, weight_files

EXPECTED_DIM = 5120  # Baichuan2-13B, the default text model


def check_model(params: Params) -> list:
    """Config, tokenizer (a sample encoded), weight files and the model's own code, without
    loading weights; the hidden size is reported (5120 for Baichuan2-13B)."""
    checks = [package_check(STAGE, m) for m in ("torch", "transformers")]
    if params.memory in ("int8", "int4"):
        checks.append(package_check(STAGE, "bitsandbytes", "bitsandbytes (extra quant)"))
    if params.memory != "single":
        checks.append(package_check(STAGE, "accelerate"))
    if not all(c.ok for c in checks):
        return checks

    def failed(item: str, e: InputError):
        cause, _, fix = str(e).partition(" -> ")
        return [*checks, bad(STAGE, item, cause, fix or "see docs/extraction_models.md")]

    try:
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["config.json"])
    except InputError as e:
        return failed("model_dir", e)
    # only now: a missing transformers is a failed check above, not an ImportError
    from transformers import AutoConfig

    try:
        kind = tokenizer_kind(path, params.tokenizer)
        tok = load_tokenizer(path, params.trust_remote_code, kind)
        ids = tok("情绪识别，测试。")["input_ids"]
    except InputError as e:
        return failed("tokenizer", e)
    checks.append(ok(STAGE, "tokenizer", f"{type(tok).__name__} ({kind}), {len(tok)} tokens, "
                     f"sample {ids[:6]}"))  # fmt: skip
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=params.trust_remote_code)
        cls, _ = base_model_class(path, config, params.trust_remote_code)
        files = weight_files(path)
        family = detect_family(read_json(path / "config.json"), path, params.family)
    except InputError as e:
        return failed("model", e)
    except (OSError, ValueError, ImportError) as e:
        return [*checks, bad(STAGE, "config", f"{path}: {e}", "check config.json / "
                             "extract.text.trust_remote_code")]  # fmt: skip
    name = cls.__name__ if cls is not None else "AutoModel"
    checks.append(ok(STAGE, "model", f"{path}: {name} ({family}), {len(files)} weight file(s)"))
    try:
        hidden_state_indices(params.layers, int(config.num_hidden_layers))
    except InputError as e:
        checks.append(bad(STAGE, "layers", str(e).removeprefix("extract text: "),
                          "change extract.text.layers"))  # fmt: skip
    dim = int(config.hidden_size)
    note = "" if dim == EXPECTED_DIM else f" (Baichuan2-13B has {EXPECTED_DIM})"
    checks.append(ok(STAGE, "dim", f"{dim}{note}"))
    return checks
