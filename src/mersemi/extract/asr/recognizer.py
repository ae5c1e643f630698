"""The WeNet recognizer: a runtime model loaded once, fbank frames in, text per decoding mode."""

import logging
from collections.abc import Iterable

import numpy as np
import torch

from ...device import select_device
from ...errors import InputError
from ...params import check_params
from ..models import require_model_dir
from . import MODES, SAMPLE_RATE, STAGE, Params
from .fbank import fbank
from .units import read_units, units_to_text
from .wenet_decode import (
    attention_scores,
    best_of,
    ctc_greedy,
    ctc_prefix_beam_nbest,
    decoder_inputs,
)
from .wenet_load import load_runtime_model

log = logging.getLogger(__name__)


class WenetRecognizer:
    """A WeNet runtime model loaded once; `recognize(wave)` -> text."""

    def __init__(self, params: Params):
        check_params(params, STAGE)
        self.params = params
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["final.zip", "units.txt"])
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
        with torch.inference_mode():
            logp = self.model.ctc_activation(enc)
        return logp[0].float().cpu().numpy()

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """CTC log-probabilities (T', vocab) for fbank frames (T, bins)."""
        return self.ctc_log_probs(self.encode(feats))

    # -- decoding

    def rescore(self, enc, nbest: list[tuple[list[int], float]]) -> list[float]:
        """Attention-rescoring totals of the n-best (order kept)."""
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
