"""`check-models` for the acoustic stage: the HuBERT directory, without loading weights."""

from ...errors import InputError
from ..modelcheck import bad, ok, package_check
from ..models import require_model_dir
from . import SAMPLE_RATE, STAGE, Params

EXPECTED_DIM = 1024  # chinese-hubert-large


def check_model(params: Params) -> list:
    """Config, feature extractor and a weights file of the HuBERT directory, without loading
    the weights; the hidden size is reported (1024 for Chinese-HuBERT-Large)."""
    checks = [package_check(STAGE, "transformers")]
    if not checks[0].ok:
        return checks
    try:
        path = require_model_dir(
            STAGE, "model_dir", params.model_dir, ["config.json", "preprocessor_config.json"]
        )
    except InputError as e:
        return [*checks, bad(STAGE, "model_dir", str(e), "set extract.acoustic.model_dir")]
    # only now: a missing transformers is a failed check above, not an ImportError
    from transformers import AutoConfig, Wav2Vec2FeatureExtractor

    weights = [p.name for p in path.glob("*.safetensors")] + [
        p.name for p in path.glob("pytorch_model*.bin")
    ]
    try:
        config = AutoConfig.from_pretrained(path)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
    except (OSError, ValueError) as e:
        return [*checks, bad(STAGE, "model_dir", f"{path}: {e}", "re-download the directory")]
    checks.append(ok(STAGE, "model_dir", f"{path} ({config.model_type})"))
    if not weights:
        checks.append(bad(STAGE, "weights", f"{path}: no *.safetensors or pytorch_model*.bin",
                          "download the model's weights into model_dir"))  # fmt: skip
    n_states = config.num_hidden_layers + 1
    if params.layers > n_states:
        checks.append(bad(STAGE, "layers", f"layers={params.layers}, model has {n_states} "
                          "hidden states", "lower extract.acoustic.layers"))  # fmt: skip
    if extractor.sampling_rate != SAMPLE_RATE:
        checks.append(bad(STAGE, "sampling_rate", f"{extractor.sampling_rate} Hz",
                          f"use a {SAMPLE_RATE} Hz HuBERT"))  # fmt: skip
    dim = int(config.hidden_size)
    note = "" if dim == EXPECTED_DIM else f" (Chinese-HuBERT-Large has {EXPECTED_DIM})"
    checks.append(ok(STAGE, "dim", f"{dim}{note}"))
    return checks
