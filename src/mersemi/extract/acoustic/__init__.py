"""Acoustic features: a transformers speech encoder on 16 kHz wavs -> one vector per clip.

The default is Chinese-HuBERT-Large. Any HuBERT, wav2vec2 (with or without stable layer norm),
WavLM, data2vec-audio or Whisper directory loads too; the family is the config's `model_type`
(`family`, `family.py`), and each family runs MERTools' recipe for it (docs/extraction.md,
"Audio encoder families"). Whisper (`whisper.py`) keeps MERTools' two decoder vectors; the
encoder frames are the named departure `whisper_output: encoder`. Below, the HuBERT-like
families (`speech.py`).

Two recipes (`recipe`, docs/extraction.md):

`mertools` (default): MERTools' `extract_audio_huggingface.py`, UTTERANCE level. The whole clip
is normalised once (zero mean, unit variance, float32, as `Wav2Vec2FeatureExtractor` does); a
clip longer than `chunk_seconds` (10 s) is zero-padded to a multiple of 10 s and cut into 10 s
chunks that run without an attention mask; the **sum** of the last `layers` (4) hidden states
as MERTools' transformers 4.28 returned them (the inputs of the last 3 encoder layers and the
output after the final LayerNorm, `hidden.LayerStates`, post_norm) is averaged over every
frame of every chunk, the padded ones included. Clips up to 10 s run as one unpadded sequence
(batched with other short clips under an attention mask, which changes no real frame, for the
families where that holds: `family.MASK_SAFE` with a layer-norm front end). fp32 on CUDA too.

`mersemi`: each chunk is normalised on its own, a tail shorter than `min_chunk_seconds` joins
the previous chunk, chunks are batched with attention masks, and the **mean** of the last 4
per-layer outputs (the last one before the final LayerNorm, as transformers 5's tuple has it)
is averaged over the real frames only; bf16 on CUDA.

Both give the hidden size (1024 for the real model).
"""

import typing
from dataclasses import dataclass

from ...errors import InputError
from ...params import AT_LEAST_1, NONNEG, POSITIVE, option
from ..common import Recipe, StageParams, recipe_option
from .family import Family, layers_error

WhisperOutput = typing.Literal["decoder", "encoder"]

STAGE = "acoustic"
SAMPLE_RATE = 16000
HELP = "16 kHz wavs (audio index CSV) -> speech-encoder features (HuBERT: last 4 layers), pooled"
# MERTools' values of the keys a config may set (others are a logged departure); `layers` is
# compared as hidden-state indices with the family's MERTools choice (family.MERTOOLS_LAYERS)
MERTOOLS = {"chunk_seconds": 10.0, "whisper_output": "decoder"}


@dataclass
class Params(StageParams):
    recipe: Recipe = recipe_option()
    model_dir: str | None = option(
        None, help="transformers speech-encoder directory (config, weights, preprocessor)"
    )
    family: Family = option(
        "auto", help="encoder family; auto: config.json's model_type (docs: audio families)"
    )
    chunk_seconds: float = option(
        10.0, range=POSITIVE, help="longer audio is processed in chunks of this length"
    )
    min_chunk_seconds: float = option(
        1.0, range=NONNEG, help="mersemi: a shorter tail joins the previous chunk"
    )
    layers: int | list[int] | typing.Literal["all"] | None = option(
        None,
        range=AT_LEAST_1,
        help="hidden states summed (mersemi: averaged): null = MERTools' for the family (last "
        "4; Whisper: last_hidden_state), N = the last N, a list of int indices (0: the "
        "embeddings, -1: the last), or all: every state stored too (HuBERT-like families)",
    )
    whisper_output: WhisperOutput = option(
        "decoder",
        help="Whisper: decoder = MERTools' 2 decoder-start vectors; encoder = the encoder's "
        "frames over the audio (a departure)",
    )
    batch_size: int = option(
        16, range=AT_LEAST_1, help="chunks per forward pass (of many clips, sorted by length)"
    )

    def check(self) -> None:
        if self.min_chunk_seconds >= self.chunk_seconds:
            raise InputError("min_chunk_seconds must be in [0, chunk_seconds)")
        why = layers_error(self.layers)
        if why:
            raise InputError(why)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--audio-index", required=True, help="the audio stage's index CSV of this shard"
    )


def run(args, params: Params) -> None:
    from .stage import run as work  # torch and transformers only when the stage runs

    work(args, params)


def check_model(params: Params) -> list:
    from .check import check_model as check

    return check(params)
