"""`extract asr`: decode every clip of a shard, in every mode the model offers (`--modes all`)
or in the configured one (`--modes decoding`).

The output does not depend on the provided transcripts (the merge, `merge.py`, picks what it
needs from it), so a transcript edit does not rerun decoding. Columns: name, text (the
configured decoding), source (asr | none), audio_valid (False: the audio stage failed),
reason, detail (why the clip has no ASR), then one text column per decoding mode. Beside it:
the reasons sidecar and `<stem>.decode.json` (model, resolved decoding, modes)."""

import json
import logging

import numpy as np
import pandas as pd

from ...atomic import atomic_path, write_csv_atomic
from ...provenance import device_name
from ..common import Outcome, prefetch, progress, read_shard, write_reasons
from ..wav import audio_rows, load_wave_for_clip
from . import SAMPLE_RATE, STAGE, Params
from .decoded import decode_info_path
from .fbank import fbank
from .recognizer import WenetRecognizer

log = logging.getLogger(__name__)


def _features_for(wav: str, bins: int) -> np.ndarray:
    return fbank(load_wave_for_clip(wav), SAMPLE_RATE, bins)


def decode_shard(
    shard, audio_index, params: Params, all_modes: bool = True
) -> tuple[pd.DataFrame, dict, Outcome]:
    """The decoded shard (frame as described above), its decode info and outcome; every mode
    the model offers, or only `decoding` (`all_modes=False`)."""
    clips = read_shard(shard)
    names = [c.name for c in clips]
    recognizer = WenetRecognizer(params)
    outcome = Outcome(names)
    rows = audio_rows(audio_index, names)
    audio_valid = [bool(rows[n].valid) for n in names]
    todo = []
    for i, n in enumerate(names):
        r = rows[n]
        if not r.valid:
            outcome.fail(i, r.reason or "no_audio", "from the audio stage")
        else:
            todo.append((i, r.wav))
    modes = recognizer.modes() if all_modes else (recognizer.decoding,)
    texts: dict[str, list[str]] = {m: [""] * len(names) for m in modes}
    feats = prefetch(
        lambda t: _features_for(t[1], params.num_mel_bins), todo, params.workers, params.prefetch
    )
    for (i, _), f, err in progress(feats, total=len(todo), desc="asr", unit="clip"):
        if err is not None:
            outcome.fail_with(i, err)
            continue
        # The modes share the encoder pass; the merge scores each against the references.
        for m, t in recognizer.texts(f, modes).items():
            texts[m][i] = t
    df = pd.DataFrame(
        {
            "name": names,
            "text": texts[recognizer.decoding],
            "source": ["asr" if v else "none" for v in outcome.valid],
            "audio_valid": audio_valid,
            "reason": outcome.reasons,
            "detail": outcome.details,
            **texts,
        }
    )
    info = {
        "model_dir": str(recognizer.model_dir),
        "decoding": recognizer.decoding,
        "modes": list(modes),
        "has_decoder": recognizer.has_decoder,
        "bidirectional": recognizer.bidirectional,
        "device": device_name(),  # for the CER report's provenance
    }
    return df, info, outcome


def run(args, params: Params) -> None:
    all_modes = getattr(args, "modes", "all") == "all"
    df, info, outcome = decode_shard(args.shard, args.audio_index, params, all_modes)
    with atomic_path(decode_info_path(args.out)) as tmp:
        tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_reasons(outcome, args.out)
    write_csv_atomic(df, args.out)
    outcome.log_summary(STAGE, args.out)
