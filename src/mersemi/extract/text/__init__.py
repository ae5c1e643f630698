"""Text features: a transformers text model on each clip's transcript. Default Baichuan2-13B-Base;
any HF encoder (`family: encoder`, the BERT family) or causal LM (`family: causal`: LLaMA,
Chinese-Alpaca-2, Baichuan2 with `trust_remote_code`), told apart by config.json (`family`).

Two recipes (`recipe`, docs/extraction.md):

`mertools` (default): MERTools' `extract_text_huggingface.py`, UTTERANCE level, the same for
both families. The transcript goes in verbatim (no strip, no whitespace collapsing); the
**sum** of the hidden states `layers` names (default the last 4), as MERTools' tuple has them
(0 the embeddings, i the output of layer i, the last one `last_hidden_state`: after the final
norm where the model has one; taken explicitly, `hidden.LayerStates`), is averaged over the
tokens `[start:end]`, where start/end come from MERTools' probe sentence (which tokens the
tokenizer adds around a sentence: none for Baichuan2, BOS for LLaMA, [CLS]/[SEP] for BERT).
fp16 on CUDA (MERTools' `model.half()`), fp32 on CPU (fp16 checkpoints too, as transformers
4.28 loaded them).

`mersemi`: whitespace runs collapsed and the transcript stripped; the **mean** of the entries
`layers` names of the model's `hidden_states` tuple, over the tokens without special tokens
(BOS/EOS/PAD/CLS/SEP; `<unk>` stays, it stands for real text); bf16 on CUDA.

No LM head is loaded (`llm_load` finds the base model whatever the directory's auto_map names).
Sentences of many clips share a batch: sorted by token count (longest first), right-padded,
with attention masks; right padding never changes the real tokens' states (causal models:
by causality; encoders: the mask), so a batched result equals the one-sentence result (checked
by the tests). An encoder's sentences are cut at its position table (BERT: 512 tokens). An
empty transcript gives `valid=false` (reason `empty_transcript`) and a zero row (MERTools:
zeros).
"""

from dataclasses import dataclass
from typing import Literal

from ...errors import InputError
from ...params import AT_LEAST_1, option
from ..common import Recipe, StageParams, recipe_option
from .family import layers_error
from .llm_load import MEMORY, TOKENIZERS

STAGE = "text"
HELP = "transcripts (CSV name,text,source) -> LLM features, last 4 layers pooled over tokens"
MERTOOLS = {"layers": 4}


@dataclass
class Params(StageParams):
    recipe: Recipe = recipe_option()
    model_dir: str | None = option(
        None, help="transformers model directory (config, weights, tokenizer)"
    )
    trust_remote_code: bool = option(False, help="Baichuan2 ships its model code: set true for it")
    family: Literal["auto", "encoder", "causal"] = option(
        "auto", help="auto: from config.json; encoder (BERT family) or causal (LLaMA, Baichuan2)"
    )
    tokenizer: Literal[tuple(TOKENIZERS)] = option(
        "auto", help="auto: the directory's code, LLaMA's slow SentencePiece, else AutoTokenizer"
    )
    layers: int | list[int] | Literal["all"] = option(
        4,
        range=AT_LEAST_1,
        help="N: the last N hidden states, a list of hidden-state indices (0: embeddings, "
        "-1: the last), or all: every state stored too (the layer probe); mertools sums them, "
        "mersemi averages them",
    )
    batch_size: int = option(32, range=AT_LEAST_1, help="sentences per forward pass")
    max_tokens: int = option(
        512, range=AT_LEAST_1, help="longer transcripts are truncated (logged)"
    )
    text_col: str = option("text", help="column of the --transcripts CSV")
    # llm_load.MEMORY; GPU memory per plan for Baichuan2-13B in docs/extraction_models.md
    memory: Literal[tuple(sorted(MEMORY))] = option(
        "single", help="memory plan (docs/extraction_models.md)"
    )

    def check(self):
        why = layers_error(self.layers)  # a list's items: whole numbers, once each
        if why:
            raise InputError(why)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--transcripts",
        required=True,
        help="transcript CSV of this shard (the transcripts step's output: name,text,source)",
    )


def run(args, params: Params) -> None:
    from .llm import run as work  # torch and transformers only when the stage runs

    work(args, params)


def check_model(params: Params) -> list:
    from .check import check_model as check

    return check(params)
