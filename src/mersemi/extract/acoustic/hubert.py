"""The acoustic stage's work: HuBERT over a shard's wavs, pooled per clip."""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import HubertModel, Wav2Vec2FeatureExtractor

from ...device import select_device
from ...errors import InputError
from ...params import check_params
from ...store import FeatureMeta
from ..common import (
    Outcome,
    departures,
    meta_params,
    prefetch,
    progress,
    read_shard,
    recipe_precision,
    write_feature_shard,
)
from ..hidden import LayerStates
from ..models import load_dtype, require_model_dir
from ..wav import audio_rows, load_wave_for_clip
from . import MERTOOLS, SAMPLE_RATE, STAGE, Params

log = logging.getLogger(__name__)

NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm


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


class HubertEmbedder:
    """Loads a HuBERT directory once; `embed(waves)` -> float32 (N, hidden) clip vectors."""

    def __init__(self, params: Params):
        check_params(params, STAGE)
        self.params = params
        path = require_model_dir(
            STAGE, "model_dir", params.model_dir, ["config.json", "preprocessor_config.json"]
        )
        self.device = select_device(params.device)
        self.precision = recipe_precision(params.recipe, params.precision, "fp32")
        self.dtype = load_dtype(self.device, self.precision)
        self.departures = departures(STAGE, params, MERTOOLS)
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

    @property
    def batch_size(self) -> int:
        return self.params.batch_size if self.extractor.return_attention_mask else 1

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Clip vectors for float32 16 kHz mono waveforms (each at least 25 ms long)."""
        if self.params.recipe == "mertools":
            return self._embed_mertools(waves)
        return self._embed_mersemi(waves)

    def normalize(self, wave: np.ndarray) -> np.ndarray:
        """The feature extractor's normalisation of one whole input, in float32 as it does."""
        x = np.asarray(wave, dtype=np.float32)
        if not self.extractor.do_normalize:
            return x
        return (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)

    def _embed_mertools(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """MERTools: whole-clip normalisation; > chunk: zero-padded chunks, no mask, padded
        frames in the mean; sum of the last `layers` states (post-norm, as 4.28 had them)."""
        size = int(round(self.params.chunk_seconds * SAMPLE_RATE))
        sums = np.zeros((len(waves), self.dim), dtype=np.float64)
        counts = np.zeros(len(waves), dtype=np.int64)
        short, chunks = [], []
        for i, w in enumerate(waves):
            x = self.normalize(w)
            if len(x) <= size:
                short.append((i, x))
                continue
            padded = np.zeros(-(-len(x) // size) * size, dtype=np.float32)
            padded[: len(x)] = x
            chunks += [(i, c) for c in padded.reshape(-1, size)]
        bs = self.params.batch_size
        for start in range(0, len(chunks), bs):  # all exactly `size` long: no mask, no padding
            batch = chunks[start : start + bs]
            s, n = self._run(np.stack([c for _, c in batch]), None, [size] * len(batch))
            np.add.at(sums, [i for i, _ in batch], s)
            np.add.at(counts, [i for i, _ in batch], n)
        short.sort(key=lambda t: len(t[1]), reverse=True)
        sbs = self.batch_size
        for start in range(0, len(short), sbs):
            batch = short[start : start + sbs]
            values, mask = self._pad([x for _, x in batch])
            s, n = self._run(values, mask, [len(x) for _, x in batch])
            sums[[i for i, _ in batch]] += s
            counts[[i for i, _ in batch]] += n
        return self._means(sums, counts)

    def _pad(self, xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        longest = max(len(x) for x in xs)
        values = np.zeros((len(xs), longest), dtype=np.float32)
        mask = np.zeros((len(xs), longest), dtype=np.int64)
        for row, x in enumerate(xs):
            values[row, : len(x)] = x
            mask[row, : len(x)] = 1
        return values, (mask if len(xs) > 1 else None)

    def _run(self, values: np.ndarray, mask, lengths) -> tuple[np.ndarray, np.ndarray]:
        """mertools: per row, the sum over its frames (all of them without a mask, the real
        ones with one) of the sum of the last `layers` states; and the frame count."""
        x = torch.from_numpy(values).to(self.device, self.dtype)
        m = None if mask is None else torch.from_numpy(mask).to(self.device)
        with torch.inference_mode(), LayerStates(self.model.encoder.layers) as cap:
            out = self.model(x, attention_mask=m)
            last = cap.last(self.params.layers, out.last_hidden_state, post_norm=True)
            states = torch.stack(last).float().sum(0)
            frames = self.model._get_feat_extract_output_lengths(torch.tensor(lengths))
            frames = frames.clamp(max=states.shape[1]).to(self.device)
            t = torch.arange(states.shape[1], device=self.device)
            keep = (t[None, :] < frames[:, None]).to(torch.float64)
            sums = (states.double() * keep[..., None]).sum(1)
        return sums.cpu().numpy(), frames.cpu().numpy()

    @staticmethod
    def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        if (counts == 0).any():
            bad = int(np.flatnonzero(counts == 0)[0])
            raise ValueError(f"clip {bad}: audio too short for the model (no output frame)")
        return (sums / counts[:, None]).astype(np.float32)

    def _embed_mersemi(self, waves: Sequence[np.ndarray]) -> np.ndarray:
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
        return self._means(sums, counts)

    def _forward(self, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk: sum over its real frames of the layer-mean hidden state, and frame count."""
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
        with torch.inference_mode(), LayerStates(self.model.encoder.layers) as cap:
            out = self.model(values, attention_mask=None if mask is None else mask.to(self.device))
            last = cap.last(self.params.layers, out.last_hidden_state, post_norm=False)
            states = torch.stack(last).float().mean(0)
            frames = self.model._get_feat_extract_output_lengths(lengths).to(self.device)
            t = torch.arange(states.shape[1], device=self.device)
            keep = (t[None, :] < frames[:, None]).to(states.dtype)
            sums = (states * keep[..., None]).sum(1)
        return sums.double().cpu().numpy(), frames.cpu().numpy()

    def meta_params(self) -> dict:
        p = self.params
        out = {
            "recipe": p.recipe,
            "model_dir": str(self.model_dir),
            "chunk_seconds": p.chunk_seconds,
            "layers": p.layers,
            "precision": str(self.dtype).removeprefix("torch."),
            "departures": self.departures,
        }
        if p.recipe == "mersemi":
            out["min_chunk_seconds"] = p.min_chunk_seconds
        return out


def clip_waves(clips, index_path, outcome, workers: int, ahead: int):
    """Yield (clip number, waveform) for the clips whose audio is usable, in shard order.

    Clips marked invalid by the audio stage keep its reason; wavs are decoded in threads."""
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
    if params.recipe == "mertools":
        layers = f"sum of last {params.layers} hidden states (post final LayerNorm)"
        pooling = (f"mean over all frames ({params.chunk_seconds:g} s zero-padded chunks, "
                   "no mask, whole-clip normalisation; MERTools)")  # fmt: skip
    else:
        layers = f"mean of last {params.layers} hidden states (pre final LayerNorm)"
        pooling = f"mean over real frames ({params.chunk_seconds:g} s masked chunks)"
    meta = FeatureMeta(
        modality="acoustic",
        model=str(embedder.model_dir),
        layers=layers,
        pooling=pooling,
        dim=embedder.dim,
        params={**meta_params(params), **embedder.meta_params()},
    )
    write_feature_shard(args.out, meta, outcome, features, STAGE)
