"""Which audio encoder family a model directory holds, and which hidden states `layers` names.

Light (no torch, no transformers): `check-models` and the stage's loader both use it.

The family is the `model_type` of the directory's `config.json` (`family: auto`), or the one
`family` names (then it must agree with `model_type`). MERTools' recipe per family
(`extract_audio_huggingface.py`, docs/extraction.md "Audio encoder families"):

- `hubert`, `wav2vec2`, `wavlm`, `data2vec-audio`: `AutoModel` + `Wav2Vec2FeatureExtractor`,
  whole-clip normalisation (per the preprocessor's `do_normalize`), 10 s zero-padded chunks
  without an attention mask, the **sum** of the last 4 hidden states, mean over every frame;
- `whisper`: `WhisperModel` + `WhisperFeatureExtractor` (30 s log-mel), the **decoder's**
  `last_hidden_state` for two `decoder_start_token_id` tokens (FRAME (2, D), UTTERANCE their
  mean).

Hidden-state indices count the model's L+1 states in the stack that is read (the speech
encoder; Whisper's decoder, or its encoder with `whisper_output: encoder`): index i < L is the
input of layer i (0: the embeddings), index L the stack's output as MERTools' transformers 4.28
tuple ended (`last_hidden_state`, after the final LayerNorm where the model has one).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from ...errors import InputError
from ..common import ALL_LAYERS

Family = typing.Literal["auto", "hubert", "wav2vec2", "wavlm", "data2vec-audio", "whisper"]
FAMILIES = typing.get_args(Family)[1:]
# Encoders read with Wav2Vec2FeatureExtractor and MERTools' chunked recipe.
SPEECH = ("hubert", "wav2vec2", "wavlm", "data2vec-audio")
# Families whose front end and positional conv leave the real frames of a short clip unchanged
# when it is batched with longer ones under an attention mask (layer-norm conv front end, one
# positional conv whose input the encoder zeroes at padding). data2vec-audio stacks 5
# positional convs (padding leaks from the second on) and group-norm front ends normalise over
# the padding: those run one clip per forward pass.
MASK_SAFE = ("hubert", "wav2vec2", "wavlm")

# Formats of MERTools' zoo that no package on the registry loads offline into transformers.
UNSUPPORTED = {
    "emotion2vec": "emotion2vec is a FunASR/fairseq checkpoint (config.yaml and a .pt) that "
    "only the funasr package loads; it is not supported (docs/extraction.md, "
    '"Audio encoder families")',
}

# MERTools' layer choice per family: the last 4 states, or Whisper's last_hidden_state.
MERTOOLS_LAYERS = {**{f: 4 for f in SPEECH}, "whisper": 1}


def read_config(path: Path) -> dict:
    """The directory's config.json (a funasr directory without one is refused by name)."""
    config = path / "config.json"
    if not config.is_file():
        funasr = ["config.yaml", "configuration.json"]
        if any((path / f).is_file() for f in funasr) or any(path.glob("*.pt")):
            raise InputError(f"extract acoustic: {path}: {UNSUPPORTED['emotion2vec']}")
        raise InputError(f"extract acoustic: model directory {path} has no config.json")
    try:
        return json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"extract acoustic: {config}: not a JSON config ({e})") from None


def detect_family(path: Path, family: str = "auto") -> str:
    """The family of the model directory `path`: its config's `model_type`, checked against
    an explicit `family`; an unsupported or unknown type is one InputError line."""
    model_type = str(read_config(path).get("model_type", ""))
    if model_type in UNSUPPORTED:
        raise InputError(f"extract acoustic: {path}: {UNSUPPORTED['emotion2vec']}")
    if model_type not in FAMILIES:
        raise InputError(
            f"extract acoustic: {path}: model_type {model_type!r} is not an audio encoder "
            f"family the stage supports ({', '.join(FAMILIES)}; docs/extraction.md)"
        )
    if family not in ("auto", model_type):
        raise InputError(
            f"extract acoustic: family={family!r} but {path}/config.json has model_type "
            f"{model_type!r} (set family: auto or {model_type})"
        )
    return model_type


def layers_error(layers) -> str | None:
    """What is wrong with a `layers` value before the model is known (None: fine)."""
    if (
        layers is None
        or layers == ALL_LAYERS
        or (isinstance(layers, int) and not isinstance(layers, bool))
    ):
        return None
    if isinstance(layers, str):
        return f"layers: {layers!r} is not null, an int, a list of indices or {ALL_LAYERS!r}"
    if not layers:
        return "layers: an empty list names no hidden state"
    bad = [v for v in layers if isinstance(v, bool) or not isinstance(v, int)]
    return f"layers: {bad[0]!r} is not a hidden-state index (an int)" if bad else None


def resolve_layers(layers, family: str, n_states: int) -> list[int]:
    """The hidden-state indices (0 .. n_states-1, ascending) that `layers` names: None is
    MERTools' choice for the family, an int N the last N, a list the given indices (negative
    ones count from the end), "all" every state (the HuBERT-like families: the layer probe)."""
    if layers == ALL_LAYERS:
        if family not in SPEECH:
            raise InputError(
                f"extract acoustic: layers: {ALL_LAYERS} is for the families "
                f"{', '.join(SPEECH)}; for {family} give a list of hidden-state indices"
            )
        return list(range(n_states))
    layers = MERTOOLS_LAYERS[family] if layers is None else layers
    if isinstance(layers, int):
        if layers > n_states:
            raise InputError(
                f"extract acoustic: layers={layers} but the model has {n_states} hidden states"
            )
        return list(range(n_states - layers, n_states))
    out = []
    for i in layers:
        if not -n_states <= i < n_states:
            raise InputError(
                f"extract acoustic: layers: index {i} out of range for the model's {n_states} "
                f"hidden states (0..{n_states - 1}, or -{n_states}..-1)"
            )
        out.append(i % n_states)
    if len(set(out)) != len(out):
        raise InputError(f"extract acoustic: layers {list(layers)} name a hidden state twice")
    return sorted(out)
