"""`extract transcripts`: the decoded shard merged with the transcripts shipped with the data.

Provided transcripts (CSV, `name,chinese` in MER2024) win for the clips they cover, else the
ASR text, else empty (source none). Writes the shard's transcripts (name,text,source), their
reasons sidecar and the CER report (`<stem>.cer.json`): the ASR output of every decoding mode
scored against the provided transcripts where both exist. Light: pandas, no torch, so a
transcript edit reruns this and the text features only."""

import dataclasses
import json
import logging
import os
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ...atomic import atomic_path, write_csv_atomic
from ...errors import InputError, shorten
from ...provenance import provenance
from ...tables import missing_text, read_csv_table
from ..common import Outcome, read_shard, write_reasons
from . import STAGE, Params
from .cer import character_error_rate
from .decoded import COLUMNS, decode_info_path

log = logging.getLogger(__name__)

HELP = "decoded ASR shard + provided transcripts -> transcripts (CSV name,text,source) + CER"


def add_arguments(parser) -> None:
    parser.add_argument("--asr", required=True, help="the asr stage's CSV of this shard")
    parser.add_argument(
        "--provided",
        default=None,
        help="transcripts shipped with the dataset (CSV; columns from params name_col, text_col)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="NAME,TEXT",
        help="columns of --provided, instead of params name_col,text_col (the inventory's "
        "per-shard transcript files: name,text)",
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


def read_provided(
    path: str | os.PathLike | None, params: Params
) -> tuple[dict[str, str], list[str]]:
    """name -> provided transcript, verbatim (NFC names), and the names whose cell holds no
    text: empty, or a string pandas reads as missing (`NaN`, `None`, ...; `missing_text`),
    which count as not provided and get ASR text, with one warning. The text stage normalises
    whitespace or not, per its recipe."""
    if not path:
        return {}, []
    df = read_csv_table(path, [params.name_col, params.text_col], "transcript CSV")
    out: dict[str, str] = {}
    missing: list[str] = []
    for name, text in zip(df[params.name_col], df[params.text_col], strict=True):
        name = unicodedata.normalize("NFC", name.strip())
        text = str(text)
        if missing_text(text):
            missing.append(name)
        else:
            out[name] = text
    if missing:
        log.warning(
            "transcript CSV %s: %d cell(s) hold no text (empty, or read as missing: NaN, None, "
            "N/A, ...), e.g. %s; those clips get ASR text",
            path,
            len(missing),
            ", ".join(shorten(n) for n in missing[:3]),
        )
    return out, missing


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


def read_decoded(path) -> tuple[pd.DataFrame, dict]:
    df = read_csv_table(path, COLUMNS, "asr CSV").set_index("name", drop=False)
    info = json.loads(decode_info_path(path).read_text(encoding="utf-8"))
    return df, info


def merge(
    names: Sequence[str],
    decoded: pd.DataFrame,
    info: dict,
    provided: dict,
    params,
    provided_missing: Collection[str] = (),
):
    """(rows, outcome, report) of a shard from its decoded frame; as one decode-and-merge
    pass would: without `asr_on_provided`, clips with a provided transcript count as not
    recognised (their ASR is neither used nor scored, nor its failures counted).
    `provided_missing`: the names whose provided cell held no text (`read_provided`), counted
    in the report."""
    missing = [n for n in names if n not in decoded.index]
    if missing:
        raise InputError(
            f"asr CSV: {len(missing)} clip(s) of the shard missing, e.g. {missing[:3]} "
            "(was it made from the same shard?)"
        )
    outcome = Outcome(names)
    asr: dict[str, str] = {}
    modes = info["modes"]
    by_mode: dict[str, dict[str, str]] = {m: {} for m in modes}
    for i, n in enumerate(names):
        r = decoded.loc[n]
        if r["audio_valid"] != "True":
            outcome.fail(i, r["reason"], r["detail"])
            continue
        if not params.asr_on_provided and n in provided:
            continue
        if r["source"] != "asr":
            outcome.fail(i, r["reason"], r["detail"])
            continue
        asr[n] = r["text"]
        if n in provided:
            for m in modes:
                by_mode[m][n] = r[m]
    rows_out = merge_transcripts(names, asr, provided)
    for i, (_, text, source) in enumerate(rows_out):
        if outcome.valid[i] and not text:
            outcome.fail(i, "empty_transcript", f"source {source}")
    scored = [n for n in names if n in provided and n in asr]
    refs = [provided[n] for n in scored]
    provided_missing = set(provided_missing)
    no_text = [n for n in names if n in provided_missing]
    report = {
        **character_error_rate(refs, [asr[n] for n in scored]),
        "model_dir": info["model_dir"],
        "decoding": info["decoding"],  # the mode of the `text` column ("auto" resolved)
        "cer_by_mode": {
            m: character_error_rate(refs, [by_mode[m][n] for n in scored]) for m in modes
        },
        "beam_size": params.beam_size,
        "ctc_weight": params.ctc_weight if info["has_decoder"] else None,
        "reverse_weight": params.reverse_weight if info["bidirectional"] else None,
        "chunk_size": params.chunk_size,
        "chunk_mode": params.chunk_mode if params.chunk_size > 0 else None,
        "clips": len(names),
        "provided": sum(n in provided for n in names),
        # clips of the shard whose provided cell held no text (empty, NaN, None, ...)
        "provided_missing": len(no_text),
        "provided_missing_examples": no_text[:5],
        "recognised": len(asr),
        # the device is the decoding job's, as when one job decoded and merged
        "provenance": {**provenance(asdict(params)), "device": info["device"]},
    }
    return rows_out, outcome, report


def run(args, params: Params) -> None:
    if getattr(args, "columns", None):
        name_col, _, text_col = args.columns.partition(",")
        params = dataclasses.replace(params, name_col=name_col, text_col=text_col)
    names = [c.name for c in read_shard(args.shard)]
    decoded, info = read_decoded(args.asr)
    provided, provided_missing = read_provided(getattr(args, "provided", None), params)
    rows_out, outcome, report = merge(names, decoded, info, provided, params, provided_missing)
    if report["cer"] is not None:
        log.info(
            "asr %s: CER %.4f (%s) against provided transcripts (%d utterances, %d chars)",
            args.out,
            report["cer"],
            report["decoding"],
            report["utterances"],
            report["ref_chars"],
        )
    cer_out = Path(args.cer_json) if getattr(args, "cer_json", None) else cer_path(args.out)
    with atomic_path(cer_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_reasons(outcome, args.out)
    write_csv_atomic(pd.DataFrame(rows_out, columns=["name", "text", "source"]), args.out)
    outcome.log_summary(STAGE, args.out)
