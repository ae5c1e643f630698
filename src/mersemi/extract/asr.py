"""ASR with a WeNet runtime model, merged with the transcripts shipped with the dataset.

A WeNet runtime directory holds `final.zip` (WeNet's `export_jit` TorchScript of its ASR model,
CMVN inside) and `units.txt` ("<unit> <id>" per line). Recognition calls the model's exported
methods as WeNet's C++ runtime does (`torch_asr_model.cc`, `asr_model.cc`): 80-bin Kaldi fbank
(25 ms / 10 ms, dither 0, int16-scaled samples, kaldi-native-fbank), `forward_encoder_chunk`
(the whole utterance at once, or chunk by chunk with caches when `chunk_size` > 0),
`ctc_activation`, CTC prefix beam search, then rescoring of its n-best with
`forward_attention_decoder` (`ctc_weight`, `reverse_weight`) when the model has a decoder.
Decoding itself is in `wenet_decode`. Checked against a model written by WeNet's exporter and
WeNet's own decoding results (tests/test_extract_asr_wenet.py).

Transcripts provided with the dataset (CSV, `name,chinese` in MER2024) win for the clips they
cover, as the MER2024 baseline merges its checked subtitles. Where both exist, the ASR output
of every decoding mode is scored against them (character error rate after removing whitespace
and punctuation).
"""

import logging
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..provenance import provenance
from .common import StageParams, prefetch, select_device
from .models import require_model_dir
from .wenet_decode import (
    attention_scores,
    best_of,
    ctc_greedy,
    ctc_prefix_beam,  # noqa: F401 - re-exported for callers of asr
    ctc_prefix_beam_nbest,
    decoder_inputs,
)

log = logging.getLogger(__name__)

STAGE = "asr"
SAMPLE_RATE = 16000
# "auto": attention_rescoring when final.zip has a decoder, else ctc_prefix_beam.
DECODERS = ("auto", "ctc_greedy", "ctc_prefix_beam", "attention_rescoring")
MODES = DECODERS[1:]
CHUNK_MODES = ("streaming", "masked")
SOURCES = ("provided", "asr", "none")
# What WeNet's C++ runtime calls; forward_attention_decoder is optional (no rescoring then).
RUNTIME_METHODS = ("forward_encoder_chunk", "ctc_activation", "subsampling_rate", "right_context")


HELP = "16 kHz wavs -> WeNet ASR text, merged with provided transcripts (CSV name,text,source)"


@dataclass
class Params(StageParams):
    model_dir: str | None = None  # WeNet runtime directory: final.zip + units.txt
    name_col: str = "name"  # columns of the provided-transcript CSV (--provided)
    text_col: str = "chinese"
    asr_on_provided: bool = True  # also recognise clips with a provided transcript (for the CER)
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


# ---------------------------------------------------------------- features


def fbank(wave: np.ndarray, sr: int = SAMPLE_RATE, num_mel_bins: int = 80) -> np.ndarray:
    """Kaldi log-mel filterbank (frames x bins) as WeNet computes it for decoding.

    WeNet's python side uses torchaudio's Kaldi fbank with these options; on the fixture's
    sample kaldi-native-fbank differs from it by 1.4e-5 on average (0.09 at most, in one
    near-zero mel bin), which changes no decoded unit."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sr
    opts.frame_opts.dither = 0.0
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = num_mel_bins
    opts.energy_floor = 0.0
    computer = knf.OnlineFbank(opts)
    # WeNet scales [-1, 1] audio to the int16 range before its fbank.
    computer.accept_waveform(sr, (np.asarray(wave, np.float32) * 32768.0).tolist())
    computer.input_finished()
    n = computer.num_frames_ready
    if n == 0:
        return np.zeros((0, num_mel_bins), dtype=np.float32)
    return np.stack([computer.get_frame(i) for i in range(n)]).astype(np.float32)


# ---------------------------------------------------------------- units


def read_units(path: str | os.PathLike) -> list[str]:
    """units.txt: one `<unit> <id>` per line, ids 0..N-1 in any order."""
    path = Path(path)
    table: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(
                f"{STAGE}: {path}, line {lineno}: expected '<unit> <id>', got {line!r}"
            )
        table[int(parts[1])] = parts[0]
    n = len(table)
    if sorted(table) != list(range(n)):
        raise InputError(f"{STAGE}: {path}: unit ids are not 0..{n - 1}")
    return [table[i] for i in range(n)]


def units_to_text(ids: Iterable[int], units: Sequence[str]) -> str:
    """Map unit ids to text, skipping special units; `▁` (BPE word start) becomes a space."""
    pieces = []
    for i in ids:
        u = units[i]
        if u.startswith("<") and u.endswith(">"):
            continue
        pieces.append(u)
    return " ".join("".join(pieces).replace("▁", " ").split())


# ---------------------------------------------------------------- scoring


def normalize_for_cer(text: str) -> str:
    """NFKC, lower case, without whitespace, punctuation and symbols (ASR emits none)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(
        c for c in text if not c.isspace() and unicodedata.category(c)[0] not in ("P", "S")
    )


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings (substitutions, insertions, deletions)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i]
        for j, hc in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc)))
        prev = cur
    return prev[-1]


def character_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus CER: total edits / total reference characters, after `normalize_for_cer`."""
    edits = chars = 0
    for r, h in zip(refs, hyps, strict=True):
        r, h = normalize_for_cer(r), normalize_for_cer(h)
        edits += edit_distance(r, h)
        chars += len(r)
    return {
        "utterances": len(refs),
        "ref_chars": chars,
        "edits": edits,
        "cer": (edits / chars) if chars else None,
    }


# ---------------------------------------------------------------- model


def load_runtime_model(path: Path, device):
    """torch.jit.load of `final.zip`, checked for the methods WeNet's runtime calls."""
    import warnings

    import torch

    zip_path = path / "final.zip"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit is WeNet's runtime format
            model = torch.jit.load(str(zip_path), map_location=device)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{STAGE}: cannot load TorchScript model {zip_path}: {first}") from None
    missing = [m for m in RUNTIME_METHODS if not hasattr(model, m)]
    if missing:
        raise InputError(
            f"{STAGE}: {zip_path} has no method {missing[0]!r}: not a WeNet runtime model "
            "(export the checkpoint with python -m wenet.bin.export_jit)"
        )
    return model.eval()


class WenetRecognizer:
    """A WeNet runtime model loaded once; `recognize(wave)` -> text."""

    def __init__(self, params: Params):
        params.check()
        self.params = params
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["final.zip", "units.txt"])
        import torch

        self._torch = torch
        self.device = select_device(params.device)
        self.units = read_units(path / "units.txt")
        self.model = load_runtime_model(path, self.device)
        m = self.model
        self.model_dir = path
        self.subsampling = int(m.subsampling_rate())
        self.context = int(m.right_context()) + 1
        # WeNet puts <sos/eos> last; the runtime asks the model.
        last = len(self.units) - 1
        self.sos = int(m.sos_symbol()) if hasattr(m, "sos_symbol") else last
        self.eos = int(m.eos_symbol()) if hasattr(m, "eos_symbol") else last
        self.has_decoder = hasattr(m, "forward_attention_decoder")
        self.bidirectional = bool(
            self.has_decoder
            and hasattr(m, "is_bidirectional_decoder")
            and m.is_bidirectional_decoder()
        )
        self.decoding = self._resolve_decoding()
        if params.chunk_size > 0 and params.chunk_mode == "masked" and not _has_encoder_forward(m):
            raise InputError(
                f"{STAGE}: {path / 'final.zip'} has no encoder.forward for chunk_mode 'masked'; "
                "use chunk_mode: streaming"
            )

    def _resolve_decoding(self) -> str:
        p, zip_path = self.params, self.model_dir / "final.zip"
        if p.decoding == "attention_rescoring" and not self.has_decoder:
            raise InputError(
                f"{STAGE}: {zip_path} has no forward_attention_decoder, so attention_rescoring "
                "is impossible; set decoding: ctc_prefix_beam (or auto)"
            )
        if self.has_decoder and p.reverse_weight > 0 and not self.bidirectional:
            raise InputError(
                f"{STAGE}: reverse_weight {p.reverse_weight} needs a bidirectional decoder, but "
                f"{zip_path} has a left-to-right one only; set reverse_weight: 0"
            )
        if p.decoding != "auto":
            return p.decoding
        if self.has_decoder:
            return "attention_rescoring"
        log.info("asr: %s has no attention decoder; decoding with ctc_prefix_beam", zip_path)
        return "ctc_prefix_beam"

    def modes(self) -> tuple[str, ...]:
        """Every decoding mode this model offers (for the per-mode CER)."""
        return MODES if self.has_decoder else MODES[:2]

    # -- encoder

    def encode(self, feats: np.ndarray):
        """Encoder output (1, T', d) for fbank frames (T, bins); None when too short."""
        torch = self._torch
        p = self.params
        if len(feats) < self.context:
            return None
        xs = torch.from_numpy(np.ascontiguousarray(feats, np.float32)).unsqueeze(0)
        xs = xs.to(self.device)
        empty = torch.zeros(0, 0, 0, 0, device=self.device)
        with torch.inference_mode():
            if p.chunk_size < 0:
                enc, _, _ = self.model.forward_encoder_chunk(xs, 0, -1, empty, empty)
            elif p.chunk_mode == "masked":
                lens = torch.tensor([xs.size(1)], device=self.device)
                enc, _ = self.model.encoder(xs, lens, p.chunk_size, p.num_left_chunks)
            else:
                enc = self._chunk_by_chunk(xs, empty)
        return enc

    def _chunk_by_chunk(self, xs, empty):
        """Streaming encoder pass as WeNet's runtime: windows of (chunk-1)*sub+context frames,
        advancing chunk*sub frames, with attention and convolution caches carried over."""
        torch = self._torch
        p = self.params
        stride = self.subsampling * p.chunk_size
        window = (p.chunk_size - 1) * self.subsampling + self.context
        required = p.chunk_size * p.num_left_chunks  # negative: keep every left chunk
        att_cache, cnn_cache, offset, outs = empty, empty, 0, []
        n = xs.size(1)
        for cur in range(0, n - self.context + 1, stride):
            end = min(cur + window, n)
            y, att_cache, cnn_cache = self.model.forward_encoder_chunk(
                xs[:, cur:end], offset, required, att_cache, cnn_cache
            )
            outs.append(y)
            offset += y.size(1)
        return torch.cat(outs, dim=1)

    def ctc_log_probs(self, enc) -> np.ndarray:
        if enc is None:
            return np.zeros((0, len(self.units)), dtype=np.float32)
        with self._torch.inference_mode():
            logp = self.model.ctc_activation(enc)
        return logp[0].float().cpu().numpy()

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """CTC log-probabilities (T', vocab) for fbank frames (T, bins)."""
        return self.ctc_log_probs(self.encode(feats))

    # -- decoding

    def rescore(self, enc, nbest: list[tuple[list[int], float]]) -> list[float]:
        """Attention-rescoring totals of the n-best (order kept)."""
        torch = self._torch
        p = self.params
        hyps = [h for h, _ in nbest]
        pad, lens = decoder_inputs(hyps, self.sos)
        rw = p.reverse_weight if self.bidirectional else 0.0
        with torch.inference_mode():
            logp, r_logp = self.model.forward_attention_decoder(
                torch.from_numpy(pad).to(self.device),
                torch.from_numpy(lens).to(self.device),
                enc,
                rw,
            )
        r = r_logp.float().cpu().numpy() if rw > 0 else None
        return attention_scores(
            hyps, [s for _, s in nbest], logp.float().cpu().numpy(), r, self.eos, p.ctc_weight, rw
        )

    def hypotheses(self, feats: np.ndarray, modes: Iterable[str] | None = None) -> dict:
        """Unit ids per decoding mode (default: the configured one) for fbank frames."""
        modes = tuple(modes or (self.decoding,))
        enc = self.encode(feats)
        logp = self.ctc_log_probs(enc)
        if len(logp) == 0:
            return {m: [] for m in modes}
        out: dict[str, list[int]] = {}
        if "ctc_greedy" in modes:
            out["ctc_greedy"] = ctc_greedy(logp)
        if {"ctc_prefix_beam", "attention_rescoring"} & set(modes):
            nbest = ctc_prefix_beam_nbest(logp, self.params.beam_size)
            out["ctc_prefix_beam"] = nbest[0][0]
            if "attention_rescoring" in modes:
                out["attention_rescoring"] = nbest[best_of(self.rescore(enc, nbest))][0]
        return {m: out[m] for m in modes}

    def texts(self, feats: np.ndarray, modes: Iterable[str] | None = None) -> dict[str, str]:
        return {
            m: units_to_text(ids, self.units) for m, ids in self.hypotheses(feats, modes).items()
        }

    def recognize(self, wave: np.ndarray) -> str:
        feats = fbank(wave, SAMPLE_RATE, self.params.num_mel_bins)
        return self.texts(feats)[self.decoding]


def _has_encoder_forward(model) -> bool:
    enc = getattr(model, "encoder", None)
    return enc is not None and hasattr(enc, "forward")


# ---------------------------------------------------------------- transcripts


def read_provided(path: str | os.PathLike | None, params: Params) -> dict[str, str]:
    """name -> provided transcript, verbatim (NFC names; blank transcripts count as not
    provided). The text stage normalises whitespace or not, per its recipe."""
    if not path:
        return {}
    from ..tables import read_csv_table

    df = read_csv_table(path, [params.name_col, params.text_col], "transcript CSV")
    out: dict[str, str] = {}
    for name, text in zip(df[params.name_col], df[params.text_col], strict=True):
        name = unicodedata.normalize("NFC", name.strip())
        text = str(text)
        if text.strip():
            out[name] = text
    return out


def merge_transcripts(
    names: Sequence[str], asr: dict[str, str], provided: dict[str, str]
) -> list[tuple[str, str, str]]:
    """Rows (name, text, source): provided wins, else ASR output, else empty with source none."""
    rows = []
    for n in names:
        if n in provided:
            rows.append((n, provided[n], "provided"))
        elif n in asr:
            rows.append((n, asr[n], "asr"))
        else:
            rows.append((n, "", "none"))
    return rows


# ---------------------------------------------------------------- stage


def add_arguments(parser) -> None:
    parser.add_argument(
        "--audio-index", required=True, help="the audio stage's index CSV of this shard"
    )
    parser.add_argument(
        "--provided",
        default=None,
        help="transcripts shipped with the dataset (CSV; columns from params name_col, text_col)",
    )
    parser.add_argument(
        "--cer-json",
        default=None,
        help="where to write the ASR character error rate against the provided transcripts "
        "(default: <out stem>.cer.json beside --out)",
    )


def cer_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.cer.json")


def _features_for(wav: str, bins: int) -> np.ndarray:
    from .acoustic import load_wave_for_clip

    return fbank(load_wave_for_clip(wav), SAMPLE_RATE, bins)


def run(args, params: Params) -> None:
    import json

    import pandas as pd

    from ..atomic import atomic_path, write_csv_atomic
    from .common import Outcome, progress, read_shard, write_reasons

    clips = read_shard(args.shard)
    names = [c.name for c in clips]
    provided = read_provided(getattr(args, "provided", None), params)
    recognizer = WenetRecognizer(params)
    outcome = Outcome(names)
    todo_names = {n for n in names if params.asr_on_provided or n not in provided}

    from .audio import audio_rows

    rows = audio_rows(args.audio_index, names)
    todo = []
    for i, n in enumerate(names):
        r = rows[n]
        if not r.valid:
            outcome.fail(i, r.reason or "no_audio", "from the audio stage")
        elif n in todo_names:
            todo.append((i, r.wav))

    asr: dict[str, str] = {}
    by_mode: dict[str, dict[str, str]] = {}  # mode -> name -> text, clips with a provided one
    all_modes = recognizer.modes()
    feats = prefetch(
        lambda t: _features_for(t[1], params.num_mel_bins), todo, params.workers, params.prefetch
    )
    for (i, _), f, err in progress(feats, total=len(todo), desc="asr", unit="clip"):
        if err is not None:
            outcome.fail_with(i, err)
            continue
        # Where a reference exists every mode is decoded (they share the encoder pass).
        texts = recognizer.texts(f, all_modes if names[i] in provided else None)
        asr[names[i]] = texts[recognizer.decoding]
        if names[i] in provided:
            for m, t in texts.items():
                by_mode.setdefault(m, {})[names[i]] = t

    rows_out = merge_transcripts(names, asr, provided)
    for i, (_, text, source) in enumerate(rows_out):
        if outcome.valid[i] and not text:
            outcome.fail(i, "empty_transcript", f"source {source}")
    scored = [n for n in names if n in provided and n in asr]
    refs = [provided[n] for n in scored]
    report = {
        **character_error_rate(refs, [asr[n] for n in scored]),
        "model_dir": str(recognizer.model_dir),
        "decoding": recognizer.decoding,  # the mode of the `text` column ("auto" resolved)
        "cer_by_mode": {
            m: character_error_rate(refs, [by_mode[m][n] for n in scored]) for m in all_modes
        },
        "beam_size": params.beam_size,
        "ctc_weight": params.ctc_weight if recognizer.has_decoder else None,
        "reverse_weight": params.reverse_weight if recognizer.bidirectional else None,
        "chunk_size": params.chunk_size,
        "chunk_mode": params.chunk_mode if params.chunk_size > 0 else None,
        "clips": len(names),
        "provided": sum(n in provided for n in names),
        "recognised": len(asr),
        "provenance": provenance(asdict(params)),
    }
    if report["cer"] is not None:
        log.info(
            "asr %s: CER %.4f (%s) against provided transcripts (%d utterances, %d chars)",
            args.out,
            report["cer"],
            recognizer.decoding,
            report["utterances"],
            report["ref_chars"],
        )
    cer_out = Path(args.cer_json) if getattr(args, "cer_json", None) else cer_path(args.out)
    with atomic_path(cer_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_reasons(outcome, args.out)
    write_csv_atomic(pd.DataFrame(rows_out, columns=["name", "text", "source"]), args.out)
    outcome.log_summary(STAGE, args.out)


# ---------------------------------------------------------------- check-models


def check_model(params: Params) -> list:
    """Cheap checks of the WeNet runtime directory (CPU, one encoder chunk of zeros)."""
    from .modelcheck import bad, ok, package_check

    fix_dir = (
        "set extract.asr.model_dir to a WeNet runtime directory (final.zip + units.txt), e.g. "
        "WenetSpeech u2pp_conformer_libtorch; see docs/extraction_models.md"
    )
    checks = [
        package_check(STAGE, "torch"),
        package_check(STAGE, "kaldi_native_fbank", "kaldi-native-fbank"),
    ]
    try:
        params.check()
    except InputError as e:
        return [*checks, bad(STAGE, "params", str(e), "fix extract.asr in the config")]
    try:
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["final.zip", "units.txt"])
    except InputError as e:
        return [*checks, bad(STAGE, "model_dir", str(e), fix_dir)]
    if not checks[0].ok:
        return checks
    import torch

    try:
        model = load_runtime_model(path, torch.device("cpu"))
    except InputError as e:
        fix = "export the checkpoint with python -m wenet.bin.export_jit, or download it again"
        return [*checks, bad(STAGE, "final.zip", str(e), fix)]
    sub, ctx = int(model.subsampling_rate()), int(model.right_context()) + 1
    checks.append(ok(STAGE, "final.zip", f"{path / 'final.zip'}: subsampling {sub}, context {ctx}"))
    try:
        xs = torch.zeros(1, 15 * sub + ctx, params.num_mel_bins)  # one runtime chunk of 16
        empty = torch.zeros(0, 0, 0, 0)
        with torch.inference_mode():
            enc, _, _ = model.forward_encoder_chunk(xs, 0, -1, empty, empty)
            vocab = int(model.ctc_activation(enc).shape[-1])
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return [
            *checks,
            bad(
                STAGE,
                "num_mel_bins",
                f"the encoder refuses {params.num_mel_bins}-bin fbank: {msg}",
                "set extract.asr.num_mel_bins to the model's input_dim (train.yaml)",
            ),
        ]
    checks.append(ok(STAGE, "num_mel_bins", f"{params.num_mel_bins} -> vocab {vocab}"))
    try:
        units = read_units(path / "units.txt")
    except InputError as e:
        checks.append(bad(STAGE, "units.txt", str(e), "use the units.txt shipped with final.zip"))
    else:
        if len(units) == vocab:
            checks.append(ok(STAGE, "units.txt", f"{len(units)} units = model vocab"))
        else:
            checks.append(
                bad(
                    STAGE,
                    "units.txt",
                    f"{path / 'units.txt'} has {len(units)} units, the model outputs {vocab}",
                    "use the units.txt shipped with this final.zip",
                )
            )
    has_decoder = hasattr(model, "forward_attention_decoder")
    if has_decoder:
        bi = hasattr(model, "is_bidirectional_decoder") and model.is_bidirectional_decoder()
        checks.append(
            ok(
                STAGE,
                "decoder",
                f"attention decoder ({'bidirectional' if bi else 'left-to-right'})",
            )
        )
        if params.reverse_weight > 0 and not bi:
            checks.append(
                bad(
                    STAGE,
                    "reverse_weight",
                    f"reverse_weight {params.reverse_weight} but no right-to-left decoder",
                    "set extract.asr.reverse_weight: 0",
                )
            )
    elif params.decoding == "attention_rescoring":
        checks.append(
            bad(
                STAGE,
                "decoder",
                f"{path / 'final.zip'} has no forward_attention_decoder",
                "set extract.asr.decoding: auto (CTC prefix beam) or use a U2/U2++ export",
            )
        )
    else:
        checks.append(ok(STAGE, "decoder", "none: decoding uses the CTC prefix beam"))
    # WeNet's export puts global CMVN inside final.zip; the runtime reads no global_cmvn file.
    enc_mod = getattr(model, "encoder", None)
    inside = enc_mod is not None and hasattr(enc_mod, "global_cmvn")
    checks.append(
        ok(
            STAGE,
            "cmvn",
            "global CMVN inside final.zip" if inside else "no global_cmvn layer named in final.zip",
        )
    )
    return checks
