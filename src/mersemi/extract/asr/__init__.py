"""ASR stage spec: WeNet decoding of a shard's wavs (`mersemi extract asr`).

Light on purpose (the CLI imports it to build its parser): the recognizer, fbank and model
loading live in `recognizer`, `fbank` and `wenet_load`, imported by `run` and `check_model`.

A WeNet runtime directory holds `final.zip` (WeNet's `export_jit` TorchScript of its ASR model,
CMVN inside) and `units.txt` ("<unit> <id>" per line). Recognition calls the model's exported
methods as WeNet's C++ runtime does (`torch_asr_model.cc`, `asr_model.cc`): 80-bin Kaldi fbank
(25 ms / 10 ms, dither 0, int16-scaled samples, kaldi-native-fbank), `forward_encoder_chunk`
(the whole utterance at once, or chunk by chunk with caches when `chunk_size` > 0),
`ctc_activation`, CTC prefix beam search, then rescoring of its n-best with
`forward_attention_decoder` (`ctc_weight`, `reverse_weight`) when the model has a decoder.
Decoding itself is in `wenet_decode`. Checked against a model written by WeNet's exporter and
WeNet's own decoding results (tests/test_extract_asr_wenet.py).

Decoding does not read the transcripts shipped with the dataset, so editing them reruns only
the merge (`mersemi extract transcripts`, module `merge`): provided transcripts win for the
clips they cover, as the MER2024 baseline merges its checked subtitles, and where both exist
the ASR output of every decoding mode is scored against them (character error rate).
"""

from dataclasses import dataclass
from typing import Literal, get_args

from ...params import AT_LEAST_1, UNIT, Range, option
from ..common import StageParams

STAGE = "asr"
SAMPLE_RATE = 16000
# "auto": attention_rescoring when final.zip has a decoder, else ctc_prefix_beam.
Decoding = Literal["auto", "ctc_greedy", "ctc_prefix_beam", "attention_rescoring"]
DECODERS = get_args(Decoding)
MODES = DECODERS[1:]
ChunkMode = Literal["streaming", "masked"]
CHUNK_MODES = get_args(ChunkMode)
SOURCES = ("provided", "asr", "none")

HELP = (
    "16 kHz wavs -> WeNet ASR text in every decoding mode "
    "(CSV name,text,source,audio_valid,reason,detail,<mode>...)"
)


@dataclass
class Params(StageParams):
    model_dir: str | None = option(None, help="WeNet runtime directory: final.zip + units.txt")
    name_col: str = option(
        "name", help="name column of the provided-transcript CSV (transcripts --provided)"
    )
    text_col: str = option("chinese", help="text column of the provided-transcript CSV")
    asr_on_provided: bool = option(
        True, help="decode clips with a provided transcript too (for the CER)"
    )
    decoding: Decoding = option(
        "auto", help="auto: attention_rescoring when final.zip has a decoder, else prefix beam"
    )
    beam_size: int = option(
        10, range=AT_LEAST_1, help="prefix beam width = n-best size for rescoring (runtime: 10)"
    )
    ctc_weight: float = option(
        0.5, range=UNIT, help="rescoring: + ctc_weight x CTC prefix score (runtime: 0.5)"
    )
    reverse_weight: float = option(
        0.0,
        range=Range(0, 1, hi_open=True),
        help="rescoring: share of the right-to-left decoder (runtime: 0.0)",
    )
    chunk_size: int = option(
        -1,
        range=Range(1, also=(-1,)),
        help="-1: whole utterance in one pass; N > 0: chunks of N encoder frames",
    )
    num_left_chunks: int = option(
        -1, range=Range(0, also=(-1,)), help="chunks of left context the encoder keeps (-1: all)"
    )
    # streaming: chunk by chunk with caches (C++ runtime); masked: one pass with chunk
    # attention masks (recognize.py without --simulate_streaming)
    chunk_mode: ChunkMode = option(
        "streaming", help="streaming: chunk by chunk with caches; masked: one masked pass"
    )
    num_mel_bins: int = option(80, range=AT_LEAST_1, help="fbank bins of the model")


def add_arguments(parser) -> None:
    parser.add_argument(
        "--audio-index", required=True, help="the audio stage's index CSV of this shard"
    )
    parser.add_argument(
        "--modes",
        choices=("all", "decoding"),
        default="all",
        help="all: every decoding mode, for the CER against provided transcripts (default);"
        " decoding: only the `decoding` mode (a dataset without transcripts)",
    )


def run(args, params: Params) -> None:
    from .decode import run as decode_run  # torch and the model: only when decoding

    decode_run(args, params)


def check_model(params: Params) -> list:
    from .check import check_model as check

    return check(params)
