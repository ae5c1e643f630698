"""Acoustic features: Chinese-HuBERT-Large (transformers) on 16 kHz wavs -> one vector per clip.

Recipe (MER2024 baseline): audio longer than `chunk_seconds` (10 s) is cut into 10 s chunks;
every chunk goes through `HubertModel` with `output_hidden_states`; the mean of the last
`layers` (4) hidden states is averaged over all frames of all chunks of the clip (a
frame-weighted mean, i.e. the time mean of the concatenated chunk outputs) -> hidden size
(1024 for the real model).

Chunks of many clips are batched together, sorted by length, padded, with attention masks;
padding never changes a result (checked by the tests), because the HuBERT-Large family
(layer-norm feature encoder) masks padded frames and the pooling only counts real frames.
"""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..store import FeatureMeta
from .common import (
    ClipFailure,
    Outcome,
    StageParams,
    meta_params,
    prefetch,
    progress,
    read_shard,
    select_device,
    write_feature_shard,
)
from .models import load_dtype, require_model_dir

log = logging.getLogger(__name__)

STAGE = "acoustic"
SAMPLE_RATE = 16000


HELP = "16 kHz wavs (audio index CSV) -> HuBERT features, mean of last 4 layers and time"


@dataclass
class Params(StageParams):
    model_dir: str | None = None  # transformers HuBERT directory (config, weights, preprocessor)
    chunk_seconds: float = 10.0  # longer audio is processed in chunks of this length
    min_chunk_seconds: float = 1.0  # a shorter tail is appended to the previous chunk
    layers: int = 4  # mean of the last N hidden states
    batch_size: int = 16  # chunks per forward pass (chunks of many clips, sorted by length)

    def check(self) -> None:
        if self.chunk_seconds <= 0:
            raise InputError(f"{STAGE}: chunk_seconds must be > 0, got {self.chunk_seconds}")
        if not 0 <= self.min_chunk_seconds < self.chunk_seconds:
            raise InputError(f"{STAGE}: min_chunk_seconds must be in [0, chunk_seconds)")
        if self.layers < 1 or self.batch_size < 1:
            raise InputError(f"{STAGE}: layers and batch_size must be >= 1")


def split_chunks(
    wave: np.ndarray, sr: int, chunk_seconds: float, min_chunk_seconds: float
) -> list[np.ndarray]:
    """Cut a waveform into consecutive chunks of `chunk_seconds`.

    A tail shorter than `min_chunk_seconds` joins the previous chunk instead of standing alone,
    so no sample is dropped and no chunk is too short for the convolutional front end.
    """
    size = int(round(chunk_seconds * sr))
    n = len(wave)
    if n <= size:
        return [wave]
    starts = list(range(0, n, size))
    if n - starts[-1] < int(round(min_chunk_seconds * sr)):
        starts.pop()
    bounds = [*starts[1:], n]
    return [wave[a:b] for a, b in zip(starts, bounds, strict=True)]


EXPECTED_DIM = 1024  # chinese-hubert-large


def check_model(params: Params) -> list:
    """Config, feature extractor and a weights file of the HuBERT directory, without loading
    the weights; the hidden size is reported (1024 for Chinese-HuBERT-Large)."""
    from .modelcheck import bad, ok, package_check

    checks = [package_check(STAGE, "transformers")]
    if not checks[0].ok:
        return checks
    try:
        path = require_model_dir(
            STAGE, "model_dir", params.model_dir, ["config.json", "preprocessor_config.json"]
        )
    except InputError as e:
        return [*checks, bad(STAGE, "model_dir", str(e), "set extract.acoustic.model_dir")]
    from transformers import AutoConfig, Wav2Vec2FeatureExtractor

    weights = [p.name for p in path.glob("*.safetensors")] + [
        p.name for p in path.glob("pytorch_model*.bin")
    ]
    try:
        config = AutoConfig.from_pretrained(path)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
    except (OSError, ValueError) as e:
        return [*checks, bad(STAGE, "model_dir", f"{path}: {e}", "re-download the directory")]
    checks.append(ok(STAGE, "model_dir", f"{path} ({config.model_type})"))
    if not weights:
        checks.append(bad(STAGE, "weights", f"{path}: no *.safetensors or pytorch_model*.bin",
                          "download the model's weights into model_dir"))  # fmt: skip
    n_states = config.num_hidden_layers + 1
    if params.layers > n_states:
        checks.append(bad(STAGE, "layers", f"layers={params.layers}, model has {n_states} "
                          "hidden states", "lower extract.acoustic.layers"))  # fmt: skip
    if extractor.sampling_rate != SAMPLE_RATE:
        checks.append(bad(STAGE, "sampling_rate", f"{extractor.sampling_rate} Hz",
                          f"use a {SAMPLE_RATE} Hz HuBERT"))  # fmt: skip
    dim = int(config.hidden_size)
    note = "" if dim == EXPECTED_DIM else f" (Chinese-HuBERT-Large has {EXPECTED_DIM})"
    checks.append(ok(STAGE, "dim", f"{dim}{note}"))
    return checks


class HubertEmbedder:
    """Loads a HuBERT directory once; `embed(waves)` -> float32 (N, hidden) clip vectors."""

    def __init__(self, params: Params):
        params.check()
        self.params = params
        path = require_model_dir(
            STAGE, "model_dir", params.model_dir, ["config.json", "preprocessor_config.json"]
        )
        import torch
        from transformers import HubertModel, Wav2Vec2FeatureExtractor

        self.device = select_device(params.device)
        self.dtype = load_dtype(self.device, params.precision)
        try:
            self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
            model = HubertModel.from_pretrained(path, dtype=self.dtype)
        except (OSError, ValueError) as e:
            raise InputError(f"{STAGE}: cannot load HuBERT from {path}: {e}") from None
        self.model = model.to(self.device).eval()
        self.model_dir = Path(path)
        self.dim = int(model.config.hidden_size)
        n_states = model.config.num_hidden_layers + 1
        if params.layers > n_states:
            raise InputError(f"{STAGE}: layers={params.layers} but the model has {n_states} states")
        if self.extractor.sampling_rate != SAMPLE_RATE:
            raise InputError(
                f"{STAGE}: {path} expects {self.extractor.sampling_rate} Hz, audio is {SAMPLE_RATE}"
            )
        if not self.extractor.return_attention_mask:
            # Group-norm HuBERT variants (base) are not padding-invariant; batch one chunk then.
            log.warning("%s: model takes no attention mask; batching one chunk at a time", path)
        self._torch = torch

    @property
    def batch_size(self) -> int:
        return self.params.batch_size if self.extractor.return_attention_mask else 1

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Clip vectors for float32 16 kHz mono waveforms (each at least 25 ms long)."""
        p = self.params
        chunks: list[tuple[int, np.ndarray]] = []
        for i, w in enumerate(waves):
            for c in split_chunks(
                np.asarray(w, np.float32), SAMPLE_RATE, p.chunk_seconds, p.min_chunk_seconds
            ):
                chunks.append((i, c))
        sums = np.zeros((len(waves), self.dim), dtype=np.float64)
        counts = np.zeros(len(waves), dtype=np.int64)
        order = sorted(range(len(chunks)), key=lambda k: len(chunks[k][1]), reverse=True)
        bs = self.batch_size
        for start in range(0, len(order), bs):
            batch = [chunks[k] for k in order[start : start + bs]]
            s, n = self._forward([c for _, c in batch])
            for (clip, _), srow, nrow in zip(batch, s, n, strict=True):
                sums[clip] += srow
                counts[clip] += nrow
        if (counts == 0).any():
            bad = int(np.flatnonzero(counts == 0)[0])
            raise ValueError(f"clip {bad}: audio too short for the model (no output frame)")
        return (sums / counts[:, None]).astype(np.float32)

    def _forward(self, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk: sum over its real frames of the layer-mean hidden state, and frame count."""
        torch = self._torch
        enc = self.extractor(
            batch,
            sampling_rate=SAMPLE_RATE,
            padding=True,
            return_tensors="pt",
            return_attention_mask=self.extractor.return_attention_mask,
        )
        values = enc["input_values"].to(self.device, self.dtype)
        mask = enc.get("attention_mask")
        lengths = torch.tensor([len(c) for c in batch])
        with torch.inference_mode():
            out = self.model(
                values,
                attention_mask=None if mask is None else mask.to(self.device),
                output_hidden_states=True,
            )
            states = torch.stack(out.hidden_states[-self.params.layers :]).float().mean(0)
            frames = self.model._get_feat_extract_output_lengths(lengths).to(self.device)
            t = torch.arange(states.shape[1], device=self.device)
            keep = (t[None, :] < frames[:, None]).to(states.dtype)
            sums = (states * keep[..., None]).sum(1)
        return sums.double().cpu().numpy(), frames.cpu().numpy()

    def meta_params(self) -> dict:
        p = self.params
        return {
            "model_dir": str(self.model_dir),
            "chunk_seconds": p.chunk_seconds,
            "min_chunk_seconds": p.min_chunk_seconds,
            "layers": p.layers,
            "precision": str(self.dtype).removeprefix("torch."),
        }


def load_wave(path: str | os.PathLike) -> np.ndarray:
    """Read a clip's wav; wrong rate or empty audio is a per-clip error (ValueError)."""
    from .wavio import read_wav

    wave, sr = read_wav(path)
    if sr != SAMPLE_RATE:
        raise ValueError(f"sample rate {sr} Hz, expected {SAMPLE_RATE}")
    if len(wave) < 400:
        raise ValueError(f"audio too short ({len(wave)} samples)")
    return wave


def load_wave_for_clip(wav: str) -> np.ndarray:
    """Worker-thread decode of one clip's wav; problems are per-clip failures."""
    try:
        return load_wave(wav)
    except ValueError as e:
        reason = "empty_audio" if "too short" in str(e) else "decode_error"
        raise ClipFailure(reason, str(e)) from None
    except OSError as e:
        raise ClipFailure("decode_error", f"{wav}: {e}") from None


def add_arguments(parser) -> None:
    parser.add_argument(
        "--audio-index", required=True, help="the audio stage's index CSV of this shard"
    )


def clip_waves(clips, index_path, outcome, workers: int, ahead: int):
    """Yield (clip number, waveform) for the clips whose audio is usable, in shard order.

    Clips marked invalid by the audio stage keep its reason; wavs are decoded in threads."""
    from .audio import audio_rows

    rows = audio_rows(index_path, [c.name for c in clips])
    todo = []
    for i, c in enumerate(clips):
        r = rows[c.name]
        if not r.valid:
            outcome.fail(i, r.reason or "no_audio", "from the audio stage")
        else:
            todo.append((i, r.wav))
    for (i, _), wave, err in prefetch(lambda t: load_wave_for_clip(t[1]), todo, workers, ahead):
        if err is not None:
            outcome.fail_with(i, err)
        else:
            yield i, wave


def run(args, params: Params) -> None:
    clips = read_shard(args.shard)
    embedder = HubertEmbedder(params)
    outcome = Outcome([c.name for c in clips])
    features = np.zeros((len(clips), embedder.dim), dtype=np.float32)
    chunk_len = params.chunk_seconds * SAMPLE_RATE
    group: list[tuple[int, np.ndarray]] = []
    n_chunks = 0

    def flush():
        nonlocal group, n_chunks
        if group:
            features[[i for i, _ in group]] = embedder.embed([w for _, w in group])
        group, n_chunks = [], 0

    waves = clip_waves(clips, args.audio_index, outcome, params.workers, params.prefetch)
    for i, wave in progress(waves, total=len(clips), desc="acoustic", unit="clip"):
        group.append((i, wave))
        n_chunks += max(1, int(np.ceil(len(wave) / chunk_len)))
        # A few batches' worth of clips at a time: enough to sort chunks by length.
        if n_chunks >= 4 * embedder.batch_size:
            flush()
    flush()
    meta = FeatureMeta(
        modality="acoustic",
        model=str(embedder.model_dir),
        layers=f"mean of last {params.layers} hidden states",
        pooling=f"mean over time ({params.chunk_seconds:g} s chunks, frame-weighted)",
        dim=embedder.dim,
        params={**meta_params(params), **embedder.meta_params()},
    )
    write_feature_shard(args.out, meta, outcome, features, STAGE)
