"""Which kind of text model a directory holds, and which of its hidden states a `layers`
option names. Both are read from the directory's config.json, without loading weights.

Families (MERTools' `extract_text_huggingface.py` runs both the same way: `tokenizer(sentence)`,
the sum of `hidden_states[-4:]`, the tokens `[start:end]` of its probe sentence, mean):

- `encoder`: a bidirectional encoder loaded with `AutoModel` (BERT, RoBERTa, MacBERT, ELECTRA,
  ...; MERTools' generic branch). Its last state is the last layer's output (`last_hidden_state`:
  the BERT family has no final norm).
- `causal`: a decoder-only language model, its base model without the LM head (LLaMA,
  Chinese-Alpaca-2, Baichuan2 with its own code, ...). Its last state is after the final norm
  (`last_hidden_state`), as transformers 4.28's tuple and Baichuan2's code had it.

The states are numbered as MERTools' `hidden_states` tuple: 0 the embeddings (the input of
layer 1), i the output of layer i, L (= -1) the last one as above. `mersemi.extract.hidden`
takes them by what they are, so a transformers release cannot change which tensor a number is.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import InputError
from ..common import ALL_LAYERS

FAMILIES = ("encoder", "causal")
CAUSAL_ARCHS = ("ForCausalLM", "LMHeadModel")
ENCODER_ARCHS = ("ForMaskedLM", "ForPreTraining")


def detect_family(config: dict, path, choice: str = "auto") -> str:
    """`encoder` or `causal` from config.json (`architectures`, `model_type`, `auto_map`), or
    `choice` when it is not `auto`. An encoder-decoder model or an unknown type is one line
    asking for `family`."""
    if choice != "auto":
        return choice
    if config.get("is_encoder_decoder"):
        raise InputError(
            f"extract text: {path}: an encoder-decoder model ({config.get('model_type')}) is "
            "not a text family the stage runs -> use an encoder or a causal LM directory"
        )
    archs = [str(a) for a in config.get("architectures") or []]
    auto_map = config.get("auto_map") or {}
    if any(a.endswith(CAUSAL_ARCHS) for a in archs) or "AutoModelForCausalLM" in auto_map:
        return "causal"
    if any(a.endswith(ENCODER_ARCHS) for a in archs):
        return "encoder"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.get("model_type")
    # BERT-like types can be configured as decoders too: a masked-LM type is an encoder
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise InputError(
        f"extract text: {path}: cannot tell the model family from config.json (model_type "
        f"{kind!r}, architectures {archs}) -> set extract.text.family: encoder or causal"
    )


def hidden_state_indices(layers: int | Sequence[int] | str, n_layers: int) -> list[int]:
    """The states `layers` names, as indices 0..n_layers (0: embeddings, n_layers: the last):
    an int N is the last N (MERTools: 4), a list holds tuple indices (negative from the end),
    "all" every state."""
    n_states = n_layers + 1
    if layers == ALL_LAYERS:
        return list(range(n_states))
    if isinstance(layers, int):
        if layers > n_states:
            raise InputError(f"extract text: layers={layers} but the model has {n_states} states")
        return list(range(n_states - layers, n_states))
    bad = [i for i in layers if not -n_states <= i < n_states]
    if bad:
        raise InputError(
            f"extract text: layers {bad} out of range: the model has {n_states} hidden states "
            f"(0..{n_layers}, or -{n_states}..-1)"
        )
    out = [i % n_states for i in layers]
    if len(set(out)) != len(out):
        raise InputError(f"extract text: layers {list(layers)} name a hidden state twice")
    return out


def layers_error(layers) -> str | None:
    """What is wrong with a `layers` value before the model is known (None: fine)."""
    if layers == ALL_LAYERS or isinstance(layers, int):
        return None
    if isinstance(layers, str):
        return f"layers: {layers!r} is not an int, a list of indices or {ALL_LAYERS!r}"
    if not layers:
        return "layers: an empty list names no hidden state"
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
        return f"layers: {list(layers)} must be whole numbers (hidden-state indices)"
    if len(set(layers)) != len(layers):
        return f"layers: {list(layers)} names a hidden state twice"
    return None


def describe_layers(layers, indices: list[int], n_layers: int) -> str:
    """The file's `layers` attr (an int N keeps the wording files had before lists)."""
    if layers == ALL_LAYERS:  # `features` holds MERTools' choice
        return f"last {len(indices)} hidden states"
    if isinstance(layers, int):
        return f"last {layers} hidden states"
    return f"hidden states {indices} of 0..{n_layers} (0: embeddings, {n_layers}: the last)"
