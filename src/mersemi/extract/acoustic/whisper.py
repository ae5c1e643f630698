"""The acoustic stage's work for Whisper: `WhisperModel` + `WhisperFeatureExtractor`.

MERTools (`extract_audio_huggingface.py`, whisper branch) computes the extractor's 80 x 3000
log-mel of the clip padded (longer clips: truncated) to 30 s, runs the model with
`decoder_input_ids = [[s, s]]`, `s = config.decoder_start_token_id`, and keeps the
**decoder's** `last_hidden_state`: FRAME (2, D), UTTERANCE the mean of the two. The audio
enters only through cross-attention. That is `whisper_output: decoder` (the default).

`whisper_output: encoder` is the named departure: the encoder's `last_hidden_state` frames
(50 per second), of consecutive 30 s windows (so nothing is truncated), averaged over the
frames that cover the audio (not the window's padding).

Hidden states are taken by what they are (`hidden.LayerStates` on the decoder's or encoder's
layers, then that stack's `last_hidden_state`, after its final LayerNorm); `layers` indexes
them (default: the last one, MERTools' `last_hidden_state`).
"""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperFeatureExtractor, WhisperModel

from ...device import select_device
from ...errors import InputError
from ...params import check_params
from ..common import recipe_precision
from ..hidden import LayerStates
from ..models import load_dtype, require_model_dir
from . import SAMPLE_RATE, STAGE, Params
from .family import resolve_layers
from .speech import load_family, mertools_departures

log = logging.getLogger(__name__)


class WhisperEmbedder:
    """Loads a Whisper directory once; `embed(waves)` -> float32 (N, d_model) clip vectors;
    `frames(wave)` -> the FRAME level of one clip ((2, D) for the decoder)."""

    n_stored = 0  # no layer sum to probe: `layers: all` is refused

    def __init__(self, params: Params):
        check_params(params, STAGE)
        self.params = params
        path, self.family = load_family(params)
        if self.family != "whisper":
            raise InputError(f"{STAGE}: {path} is a {self.family} model, not Whisper")
        require_model_dir(STAGE, "model_dir", params.model_dir, ["preprocessor_config.json"])
        self.device = select_device(params.device)
        self.precision = recipe_precision(params.recipe, params.precision, "fp32")
        self.dtype = load_dtype(self.device, self.precision)
        try:
            self.extractor = WhisperFeatureExtractor.from_pretrained(path)
            model = WhisperModel.from_pretrained(path, dtype=self.dtype)
        except (OSError, ValueError) as e:
            raise InputError(f"{STAGE}: cannot load Whisper from {path}: {e}") from None
        self.model = model.to(self.device).eval()
        self.model_dir = Path(path)
        self.output = params.whisper_output
        self.stack = model.decoder if self.output == "decoder" else model.encoder
        self.n_states = len(self.stack.layers) + 1
        self.indices = resolve_layers(params.layers, self.family, self.n_states)
        self.departures = mertools_departures(params, self.family, self.indices, self.n_states)
        self.dim = int(model.config.d_model)
        self.start = int(model.config.decoder_start_token_id)
        self.window = int(self.extractor.n_samples)  # 30 s
        # encoder frames per sample: the log-mel hop, then the second conv's stride 2
        self.samples_per_frame = 2 * int(self.extractor.hop_length)
        if self.extractor.sampling_rate != SAMPLE_RATE:
            raise InputError(
                f"{STAGE}: {path} expects {self.extractor.sampling_rate} Hz, audio is {SAMPLE_RATE}"
            )

    @property
    def batch_size(self) -> int:
        return self.params.batch_size

    @property
    def chunk_samples(self) -> int:
        return self.window

    def _combine(self, states: list) -> torch.Tensor:
        stacked = torch.stack(states).float()
        return stacked.sum(0) if self.params.recipe == "mertools" else stacked.mean(0)

    def _forward(self, windows: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, T, D) float32: the chosen states of the decoder (T = 2) or the encoder
        (T = 1500) for up to 30 s of audio per row (the extractor pads or truncates)."""
        feats = self.extractor(
            [np.asarray(w, dtype=np.float32) for w in windows],
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
        ).input_features.to(self.device, self.dtype)
        with torch.inference_mode(), LayerStates(self.stack.layers) as cap:
            if self.output == "decoder":
                ids = torch.full((len(windows), 2), self.start, device=self.device)
                final = self.model(feats, decoder_input_ids=ids).last_hidden_state
            else:
                final = self.model.encoder(feats).last_hidden_state
            states = cap.states(final, post_norm=True)
            return self._combine([states[i] for i in self.indices])

    def _windows(self, wave: np.ndarray) -> list[np.ndarray]:
        """The encoder's 30 s windows of a clip (the decoder reads only the first, as MERTools)."""
        wave = np.asarray(wave, dtype=np.float32)
        if self.output == "decoder" or len(wave) <= self.window:
            return [wave]
        return [wave[a : a + self.window] for a in range(0, len(wave), self.window)]

    def _kept(self, window: np.ndarray) -> int:
        """Encoder frames that cover a window's audio (not its padding to 30 s)."""
        n = min(len(window), self.window)
        return min(-(-n // self.samples_per_frame), self.window // self.samples_per_frame)

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """One clip's FRAME level: (2, D) decoder vectors, or the encoder frames over the audio."""
        rows = []
        for w in self._windows(wave):
            states = self._forward([w])[0]
            rows.append(states if self.output == "decoder" else states[: self._kept(w)])
        return torch.cat(rows).cpu().numpy()

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Clip vectors: the mean of each clip's FRAME rows (summed in float64)."""
        if self.output == "decoder":
            long = sum(len(w) > self.window for w in waves)
            if long:
                log.info("%s: %d clip(s) over 30 s: Whisper's decoder reads the first 30 s "
                         "(MERTools)", STAGE, long)  # fmt: skip
        items = [(i, w) for i, wave in enumerate(waves) for w in self._windows(wave)]
        sums = np.zeros((len(waves), self.dim), dtype=np.float64)
        counts = np.zeros(len(waves), dtype=np.int64)
        bs = self.batch_size
        for start in range(0, len(items), bs):
            batch = items[start : start + bs]
            states = self._forward([w for _, w in batch]).double()
            for row, (i, w) in enumerate(batch):
                n = states.shape[1] if self.output == "decoder" else self._kept(w)
                sums[i] += states[row, :n].sum(0).cpu().numpy()
                counts[i] += n
        return (sums / counts[:, None]).astype(np.float32)

    def meta_params(self) -> dict:
        """The family, the output read and the hidden-state indices of that stack."""
        p = self.params
        return {
            "recipe": p.recipe,
            "model_dir": str(self.model_dir),
            "family": self.family,
            "whisper_output": self.output,
            "layers": 1 if p.layers is None else p.layers,
            "hidden_states": self.indices,
            "n_states": self.n_states,
            "window_seconds": self.window / SAMPLE_RATE,
            "precision": str(self.dtype).removeprefix("torch."),
            "departures": self.departures,
        }

    def describe(self) -> tuple[str, str]:
        """The file's `layers` and `pooling` attrs, in words."""
        op = "sum" if self.params.recipe == "mertools" else "mean"
        stack = self.output
        if self.indices == [self.n_states - 1]:
            layers = f"{stack} last_hidden_state (after its final LayerNorm)"
        else:
            layers = f"{op} of {stack} hidden states {self.indices} of {self.n_states}"
        if self.output == "decoder":
            pooling = ("mean of the 2 decoder_start_token_id positions (30 s log-mel, longer "
                       "audio truncated; MERTools)")  # fmt: skip
        else:
            pooling = ("mean over the encoder frames covering the audio (30 s windows; "
                       "departure whisper_output=encoder)")  # fmt: skip
        return layers, pooling
