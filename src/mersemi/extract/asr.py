"""ASR with a WeNet runtime model, merged with the transcripts shipped with the dataset.

A WeNet runtime directory holds `final.zip` (a TorchScript export of WeNet's ASR model) and
`units.txt` ("<unit> <id>" per line). Recognition follows WeNet's own runtime: 80-bin Kaldi
fbank (25 ms / 10 ms, dither 0, int16-scaled samples, kaldi-native-fbank), the encoder via
`forward_encoder_chunk` (whole utterance at once, or chunk by chunk with caches when
`chunk_size` > 0, as WeNet's `forward_chunk_by_chunk`), `ctc_activation`, then CTC greedy or
prefix-beam decoding and the unit table (`▁` marks a word start in English BPE units).

Transcripts provided with the dataset (CSV, `name,chinese` in MER2024) win for the clips they
cover, as the MER2024 baseline merges its checked subtitles. Where both exist, the ASR output
is scored against them (character error rate after removing whitespace and punctuation).
"""

import heapq
import logging
import math
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .common import StageParams, prefetch, select_device
from .models import require_model_dir

log = logging.getLogger(__name__)

STAGE = "asr"
SAMPLE_RATE = 16000
DECODERS = ("ctc_greedy", "ctc_prefix_beam")
SOURCES = ("provided", "asr", "none")


HELP = "16 kHz wavs -> WeNet ASR text, merged with provided transcripts (CSV name,text,source)"


@dataclass
class Params(StageParams):
    model_dir: str | None = None  # WeNet runtime directory: final.zip + units.txt
    name_col: str = "name"  # columns of the provided-transcript CSV (--provided)
    text_col: str = "chinese"
    asr_on_provided: bool = True  # also recognise clips with a provided transcript (for the CER)
    decoding: str = "ctc_prefix_beam"  # or ctc_greedy
    beam_size: int = 10
    chunk_size: int = -1  # -1: whole utterance in one pass; > 0: streaming chunks of this many
    num_left_chunks: int = -1  # encoder frames with this many cached left chunks (-1: all)
    num_mel_bins: int = 80

    def check(self) -> None:
        if self.decoding not in DECODERS:
            raise InputError(f"{STAGE}: decoding must be one of {DECODERS}, got {self.decoding!r}")
        if self.beam_size < 1:
            raise InputError(f"{STAGE}: beam_size must be >= 1")
        if self.chunk_size == 0 or self.chunk_size < -1:
            raise InputError(f"{STAGE}: chunk_size must be -1 or > 0, got {self.chunk_size}")


# ---------------------------------------------------------------- features


def fbank(wave: np.ndarray, sr: int = SAMPLE_RATE, num_mel_bins: int = 80) -> np.ndarray:
    """Kaldi log-mel filterbank (frames x bins) as WeNet computes it for decoding."""
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


# ---------------------------------------------------------------- decoding


def ctc_greedy(logp: np.ndarray, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = np.asarray(logp).argmax(axis=-1)
    out, prev = [], -1
    for t in best.tolist():
        if t != prev and t != blank:
            out.append(t)
        prev = t
    return out


def _logadd(*xs: float) -> float:
    m = max(xs)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(x - m) for x in xs))


def ctc_prefix_beam(logp: np.ndarray, beam: int = 10, blank: int = 0) -> list[int]:
    """CTC prefix beam search (no language model), as WeNet's `ctc_prefix_beam_search`.

    Each prefix keeps (log P ending in blank, log P ending in its last unit); per frame only
    the `beam` most likely units are expanded.
    """
    logp = np.asarray(logp, dtype=np.float64)
    ninf = -math.inf
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, ninf)}
    for frame in logp:
        top = np.argpartition(-frame, min(beam, len(frame) - 1))[:beam]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def get(p, nxt=nxt):
            return nxt.setdefault(p, [ninf, ninf])

        for prefix, (pb, pnb) in beams.items():
            for u in top.tolist():
                lp = float(frame[u])
                if u == blank:
                    e = get(prefix)
                    e[0] = _logadd(e[0], pb + lp, pnb + lp)
                elif prefix and u == prefix[-1]:
                    e = get(prefix)  # repeat without blank: same prefix
                    e[1] = _logadd(e[1], pnb + lp)
                    e = get((*prefix, u))  # repeat after a blank: new unit
                    e[1] = _logadd(e[1], pb + lp)
                else:
                    e = get((*prefix, u))
                    e[1] = _logadd(e[1], pb + lp, pnb + lp)
        best = heapq.nlargest(beam, nxt.items(), key=lambda kv: _logadd(*kv[1]))
        beams = {p: (v[0], v[1]) for p, v in best}
    return list(max(beams.items(), key=lambda kv: _logadd(*kv[1]))[0])


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
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # jit is WeNet's runtime format
                self.model = torch.jit.load(str(path / "final.zip"), map_location=self.device)
        except (RuntimeError, ValueError) as e:
            raise InputError(
                f"{STAGE}: cannot load TorchScript model {path / 'final.zip'}: {e}"
            ) from None
        self.model.eval()
        for method in (
            "forward_encoder_chunk",
            "ctc_activation",
            "subsampling_rate",
            "right_context",
        ):
            if not hasattr(self.model, method):
                raise InputError(
                    f"{STAGE}: {path / 'final.zip'} has no method {method!r}: not a WeNet runtime "
                    "model (export it with wenet/bin/export_jit.py)"
                )
        self.subsampling = int(self.model.subsampling_rate())
        self.context = int(self.model.right_context()) + 1
        self.model_dir = path

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """CTC log-probabilities (T', vocab) for fbank frames (T, bins)."""
        torch = self._torch
        p = self.params
        if len(feats) < self.context:
            return np.zeros((0, len(self.units)), dtype=np.float32)
        xs = torch.from_numpy(feats).unsqueeze(0).to(self.device)
        empty = torch.zeros(0, 0, 0, 0, device=self.device)
        with torch.inference_mode():
            if p.chunk_size < 0:
                enc, _, _ = self.model.forward_encoder_chunk(xs, 0, -1, empty, empty)
            else:
                enc = self._chunk_by_chunk(xs, empty)
            logp = self.model.ctc_activation(enc)
        return logp[0].float().cpu().numpy()

    def _chunk_by_chunk(self, xs, empty):
        """Streaming encoder pass as WeNet's runtime: decoding windows with left caches."""
        torch = self._torch
        p = self.params
        stride = self.subsampling * p.chunk_size
        window = (p.chunk_size - 1) * self.subsampling + self.context
        required = p.chunk_size * p.num_left_chunks if p.num_left_chunks >= 0 else -1
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

    def decode(self, logp: np.ndarray) -> str:
        if len(logp) == 0:
            return ""
        if self.params.decoding == "ctc_greedy":
            ids = ctc_greedy(logp)
        else:
            ids = ctc_prefix_beam(logp, self.params.beam_size)
        return units_to_text(ids, self.units)

    def recognize(self, wave: np.ndarray) -> str:
        return self.decode(self.log_probs(fbank(wave, SAMPLE_RATE, self.params.num_mel_bins)))


# ---------------------------------------------------------------- transcripts


def read_provided(path: str | os.PathLike | None, params: Params) -> dict[str, str]:
    """name -> provided transcript (NFC names; blank transcripts count as not provided)."""
    if not path:
        return {}
    from ..manifest import read_csv_table

    df = read_csv_table(path, [params.name_col, params.text_col], "transcript CSV")
    out: dict[str, str] = {}
    for name, text in zip(df[params.name_col], df[params.text_col], strict=True):
        name = unicodedata.normalize("NFC", name.strip())
        text = " ".join(str(text).split())
        if text:
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
    feats = prefetch(
        lambda t: _features_for(t[1], params.num_mel_bins), todo, params.workers, params.prefetch
    )
    for (i, _), f, err in progress(feats, total=len(todo), desc="asr", unit="clip"):
        if err is not None:
            outcome.fail_with(i, err)
        else:
            asr[names[i]] = recognizer.decode(recognizer.log_probs(f))

    rows_out = merge_transcripts(names, asr, provided)
    for i, (_, text, source) in enumerate(rows_out):
        if outcome.valid[i] and not text:
            outcome.fail(i, "empty_transcript", f"source {source}")
    scored = [n for n in names if n in provided and n in asr]
    report = {
        **character_error_rate([provided[n] for n in scored], [asr[n] for n in scored]),
        "model_dir": str(recognizer.model_dir),
        "decoding": params.decoding,
        "clips": len(names),
        "provided": sum(n in provided for n in names),
        "recognised": len(asr),
    }
    if report["cer"] is not None:
        log.info(
            "asr %s: CER %.4f against provided transcripts (%d utterances, %d chars)",
            args.out,
            report["cer"],
            report["utterances"],
            report["ref_chars"],
        )
    cer_out = Path(args.cer_json) if getattr(args, "cer_json", None) else cer_path(args.out)
    with atomic_path(cer_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_reasons(outcome, args.out)
    write_csv_atomic(pd.DataFrame(rows_out, columns=["name", "text", "source"]), args.out)
    outcome.log_summary(STAGE, args.out)
