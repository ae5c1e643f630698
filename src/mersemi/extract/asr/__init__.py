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

from ...errors import InputError
from ..common import StageParams

STAGE = "asr"
SAMPLE_RATE = 16000
# "auto": attention_rescoring when final.zip has a decoder, else ctc_prefix_beam.
DECODERS = ("auto", "ctc_greedy", "ctc_prefix_beam", "attention_rescoring")
MODES = DECODERS[1:]
CHUNK_MODES = ("streaming", "masked")
SOURCES = ("provided", "asr", "none")

HELP = (
    "16 kHz wavs -> WeNet ASR text in every decoding mode "
    "(CSV name,text,source,audio_valid,reason,detail,<mode>...)"
)


@dataclass
class Params(StageParams):
    model_dir: str | None = None  # WeNet runtime directory: final.zip + units.txt
    name_col: str = "name"  # columns of the provided-transcript CSV (transcripts --provided)
    text_col: str = "chinese"
    asr_on_provided: bool = True  # use the ASR of clips with a provided transcript (the CER)
    decoding: str = "auto"  # auto | ctc_greedy | ctc_prefix_beam | attention_rescoring
    beam_size: int = 10  # prefix beam width = n-best size for rescoring (runtime: 10)
    ctc_weight: float = 0.5  # rescoring: + ctc_weight * CTC prefix score (runtime default 0.5)
    reverse_weight: float = 0.0  # rescoring: share of the right-to-left decoder (runtime 0.0)
    chunk_size: int = -1  # -1: whole utterance in one pass; N > 0: chunks of N encoder frames
    num_left_chunks: int = -1  # chunks of left context the encoder keeps (-1: all)
    chunk_mode: str = "streaming"  # streaming: chunk by chunk with caches (C++ runtime);
    # masked: one pass with chunk attention masks (recognize.py without --simulate_streaming)
    num_mel_bins: int = 80

    def check(self) -> None:
        if self.decoding not in DECODERS:
            raise InputError(f"{STAGE}: decoding must be one of {DECODERS}, got {self.decoding!r}")
        if self.beam_size < 1:
            raise InputError(f"{STAGE}: beam_size must be >= 1")
        if self.chunk_size == 0 or self.chunk_size < -1:
            raise InputError(f"{STAGE}: chunk_size must be -1 or > 0, got {self.chunk_size}")
        if self.chunk_mode not in CHUNK_MODES:
            raise InputError(
                f"{STAGE}: chunk_mode must be one of {CHUNK_MODES}, got {self.chunk_mode!r}"
            )
        if self.ctc_weight < 0:
            raise InputError(f"{STAGE}: ctc_weight must be >= 0, got {self.ctc_weight}")
        if not 0 <= self.reverse_weight < 1:
            raise InputError(
                f"{STAGE}: reverse_weight must be in [0, 1), got {self.reverse_weight}"
            )


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
