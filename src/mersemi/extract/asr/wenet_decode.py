"""WeNet's CTC decoding and attention rescoring on arrays (no model, no torch).

Written from WeNet's `wenet/models/transformer/search.py` and its C++ runtime
(`runtime/core/decoder/ctc_prefix_beam_search.cc`, `asr_decoder.cc`, `torch_asr_model.cc`):

* greedy: argmax per frame, merge repeats, drop blanks;
* prefix beam: per frame the `beam` most likely units (in descending order) extend the `beam`
  best prefixes; a prefix's score is log(P ending in blank + P ending in its last unit);
  the n-best list and scores are what rescoring consumes;
* attention rescoring: every n-best prefix is scored by the attention decoder (sum of
  log P(unit) plus log P(eos)), optionally mixed with the right-to-left decoder
  (`reverse_weight`), and `ctc_weight` times its CTC score is added; the best total wins.

The loop order and accumulation follow WeNet's so that n-best order and scores match it.
"""

import math
from collections.abc import Sequence

import numpy as np

NEG_INF = -math.inf


def log_add(*xs: float) -> float:
    """log(sum(exp(x))) without overflow; -inf when every term is -inf."""
    m = max(xs)
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(sum(math.exp(x - m) for x in xs))


def ctc_greedy(logp: np.ndarray, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = np.asarray(logp).argmax(axis=-1)
    out, prev = [], -1
    for t in best.tolist():
        if t != prev and t != blank:
            out.append(t)
        prev = t
    return out


def ctc_prefix_beam_nbest(
    logp: np.ndarray, beam: int = 10, blank: int = 0
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search: the `beam` best (units, log score), best first."""
    logp = np.asarray(logp)
    k = min(beam, logp.shape[-1]) if logp.ndim == 2 else beam
    # prefix -> [log P ending in blank, log P ending in the prefix's last unit]
    hyps: list[tuple[tuple[int, ...], list[float]]] = [((), [0.0, NEG_INF])]
    for frame in logp:
        # Units in descending probability, as torch.topk returns them (ties: lower id first).
        top = np.argsort(-frame, kind="stable")[:k].tolist()
        nxt: dict[tuple[int, ...], list[float]] = {}
        for u in top:
            p = float(frame[u])
            for prefix, (s, ns) in hyps:
                if u == blank:
                    e = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
                    e[0] = log_add(e[0], log_add(s, ns) + p)
                elif prefix and u == prefix[-1]:
                    e = nxt.setdefault(prefix, [NEG_INF, NEG_INF])  # uu -> u
                    e[1] = log_add(e[1], ns + p)
                    e = nxt.setdefault((*prefix, u), [NEG_INF, NEG_INF])  # u-u -> uu
                    e[1] = log_add(e[1], s + p)
                else:
                    e = nxt.setdefault((*prefix, u), [NEG_INF, NEG_INF])
                    e[1] = log_add(e[1], log_add(s, ns) + p)
        # sorted() is stable, so equal scores keep insertion order, as in WeNet.
        hyps = sorted(nxt.items(), key=lambda kv: log_add(*kv[1]), reverse=True)[:beam]
    return [(list(prefix), log_add(*sc)) for prefix, sc in hyps]


def ctc_prefix_beam(logp: np.ndarray, beam: int = 10, blank: int = 0) -> list[int]:
    """The best labelling of `ctc_prefix_beam_nbest`."""
    return ctc_prefix_beam_nbest(logp, beam, blank)[0][0]


def decoder_inputs(hyps: Sequence[Sequence[int]], sos: int) -> tuple[np.ndarray, np.ndarray]:
    """(hyps, lengths) for `forward_attention_decoder`: <sos> + units, zero padded (as C++)."""
    width = max(len(h) for h in hyps) + 1
    pad = np.zeros((len(hyps), width), dtype=np.int64)
    pad[:, 0] = sos
    for i, h in enumerate(hyps):
        pad[i, 1 : len(h) + 1] = h
    return pad, np.array([len(h) + 1 for h in hyps], dtype=np.int64)


def attention_scores(
    hyps: Sequence[Sequence[int]],
    ctc_scores: Sequence[float],
    decoder_logp: np.ndarray,
    r_decoder_logp: np.ndarray | None,
    eos: int,
    ctc_weight: float,
    reverse_weight: float,
) -> list[float]:
    """Total rescoring score per hypothesis (WeNet runtime formula, rescoring weight 1).

    decoder_logp: (n, L, vocab) log-probs of the left-to-right decoder for `decoder_inputs`;
    r_decoder_logp: the same from the right-to-left decoder (used when reverse_weight > 0).
    """
    out = []
    for i, h in enumerate(hyps):
        n = len(h)
        score = float(sum(decoder_logp[i, j, w] for j, w in enumerate(h)))
        score += float(decoder_logp[i, n, eos])
        if reverse_weight > 0 and r_decoder_logp is not None:
            # The right-to-left decoder reads the units reversed: position j holds h[n-1-j].
            r = float(sum(r_decoder_logp[i, n - 1 - j, w] for j, w in enumerate(h)))
            r += float(r_decoder_logp[i, n, eos])
            score = score * (1 - reverse_weight) + r * reverse_weight
        out.append(score + ctc_weight * ctc_scores[i])
    return out


def best_of(scores: Sequence[float]) -> int:
    """Index of the highest score; the first one on ties (strict >, as WeNet)."""
    best, idx = NEG_INF, 0
    for i, s in enumerate(scores):
        if s > best:
            best, idx = s, i
    return idx
