"""`check-models` for the acoustic stage: the speech-encoder directory, without loading weights."""

from ...errors import InputError
from ..modelcheck import bad, ok, package_check
from ..models import require_model_dir
from . import SAMPLE_RATE, STAGE, Params
from .family import detect_family, resolve_layers

EXPECTED_DIM = 1024  # chinese-hubert-large


def check_model(params: Params) -> list:
    """Config, family, feature extractor and a weights file of the model directory, without
    loading the weights; the hidden size is reported (1024 for Chinese-HuBERT-Large)."""
    checks = [package_check(STAGE, "transformers")]
    if not checks[0].ok:
        return checks
    try:
        path = require_model_dir(STAGE, "model_dir", params.model_dir, [])
    except InputError as e:
        return [*checks, bad(STAGE, "model_dir", str(e), "set extract.acoustic.model_dir")]
    try:
        family = detect_family(path, params.family)
        require_model_dir(STAGE, "model_dir", params.model_dir, ["preprocessor_config.json"])
    except InputError as e:
        fix = "re-download the directory, or name a supported encoder (docs/extraction.md)"
        return [*checks, bad(STAGE, "model_dir", str(e), fix)]
    # only now: a missing transformers is a failed check above, not an ImportError
    from transformers import AutoConfig, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    weights = [p.name for p in path.glob("*.safetensors")] + [
        p.name for p in path.glob("pytorch_model*.bin")
    ]
    reader = WhisperFeatureExtractor if family == "whisper" else Wav2Vec2FeatureExtractor
    try:
        config = AutoConfig.from_pretrained(path)
        extractor = reader.from_pretrained(path)
    except (OSError, ValueError) as e:
        return [*checks, bad(STAGE, "model_dir", f"{path}: {e}", "re-download the directory")]
    checks.append(ok(STAGE, "model_dir", f"{path} ({config.model_type})"))
    if not weights:
        checks.append(bad(STAGE, "weights", f"{path}: no *.safetensors or pytorch_model*.bin",
                          "download the model's weights into model_dir"))  # fmt: skip
    if family == "whisper" and params.whisper_output == "decoder":
        n_layers = int(config.decoder_layers)
    else:
        n_layers = int(config.num_hidden_layers)  # Whisper: its encoder's layers
    try:
        resolve_layers(params.layers, family, n_layers + 1)
    except InputError as e:
        checks.append(
            bad(STAGE, "layers", str(e), "lower extract.acoustic.layers (or fix its indices)")
        )
    if extractor.sampling_rate != SAMPLE_RATE:
        checks.append(bad(STAGE, "sampling_rate", f"{extractor.sampling_rate} Hz",
                          f"use a {SAMPLE_RATE} Hz model"))  # fmt: skip
    dim = int(config.hidden_size)
    note = f" (Chinese-HuBERT-Large has {EXPECTED_DIM})"
    note = "" if dim == EXPECTED_DIM or family != "hubert" else note
    checks.append(ok(STAGE, "dim", f"{dim} ({family})" + note))
    return checks
