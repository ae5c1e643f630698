"""Character error rate of ASR output against reference transcripts."""

import unicodedata
from collections.abc import Sequence


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
