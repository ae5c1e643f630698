"""The acoustic stage's work for the HuBERT-like families (hubert, wav2vec2, wavlm,
data2vec-audio): `AutoModel` + `Wav2Vec2FeatureExtractor` over a shard's wavs, pooled per clip.

MERTools runs each of these families with the same code (`extract_audio_huggingface.py`);
so does `SpeechEmbedder`. The hidden states are taken by what they are (`hidden.LayerStates`:
the layer inputs, then `last_hidden_state`), whatever the library's `hidden_states` tuple
holds: for a stable-layer-norm model (HuBERT-Large, chinese-wav2vec2-large) the last one is
after the final LayerNorm, as MERTools' transformers 4.28 tuple had it."""

import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from transformers import AutoModel, Wav2Vec2FeatureExtractor

from ...device import select_device
from ...errors import InputError
from ...params import check_params
from ..common import (
    ALL_LAYERS,
    combine_layers,
    departures,
    recipe_precision,
    stored_layers_note,
)
from ..hidden import LayerStates
from ..models import load_dtype, require_model_dir
from . import MERTOOLS, SAMPLE_RATE, STAGE, Params
from .family import MASK_SAFE, MERTOOLS_LAYERS, SPEECH, detect_family, resolve_layers

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


def mertools_departures(params: Params, family: str, indices: list[int], n_states: int):
    """`departures` of the stage: the keys of MERTOOLS, and `layers` compared as hidden-state
    indices with the family's MERTools choice (so `layers: [-4, -3, -2, -1]` is none)."""
    default = resolve_layers(MERTOOLS_LAYERS[family], family, n_states)
    keys = {k: v for k, v in MERTOOLS.items() if k != "whisper_output" or family == "whisper"}
    if family == "whisper":
        keys.pop("chunk_seconds")
    view = SimpleNamespace(**{k: getattr(params, k) for k in keys}, recipe=params.recipe)
    view.layers = indices
    return departures(STAGE, view, {**keys, "layers": default})


def load_family(params: Params) -> tuple[Path, str]:
    """The checked model directory and its family (one InputError line when unsupported)."""
    path = require_model_dir(STAGE, "model_dir", params.model_dir, [])
    return path, detect_family(path, params.family)


class SpeechEmbedder:
    """Loads a HuBERT-like directory once; `embed(waves)` -> float32 (N, hidden) clip vectors
    (the stage's UTTERANCE level); `embed_layers(waves)` -> those and, with `layers: all`,
    every hidden state's pooled vector (N, n_states, hidden); `frames(wave)` -> MERTools'
    FRAME level of one clip."""

    def __init__(self, params: Params):
        check_params(params, STAGE)
        self.params = params
        path, self.family = load_family(params)
        if self.family not in SPEECH:
            raise InputError(f"{STAGE}: {path} is a {self.family} model (stage.load_embedder)")
        require_model_dir(STAGE, "model_dir", params.model_dir, ["preprocessor_config.json"])
        self.device = select_device(params.device)
        self.precision = recipe_precision(params.recipe, params.precision, "fp32")
        self.dtype = load_dtype(self.device, self.precision)
        try:
            self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
            model = AutoModel.from_pretrained(path, dtype=self.dtype)
        except (OSError, ValueError) as e:
            raise InputError(f"{STAGE}: cannot load {self.family} from {path}: {e}") from None
        self.model = model.to(self.device).eval()
        self.model_dir = Path(path)
        self.dim = int(model.config.hidden_size)
        self.n_states = len(self.model.encoder.layers) + 1
        # `layers: all` pools every state (`taken`) and sums the family's default (`indices`)
        self.all_layers = params.layers == ALL_LAYERS
        self.taken = resolve_layers(params.layers, self.family, self.n_states)
        default = resolve_layers(None, self.family, self.n_states)
        self.indices = default if self.all_layers else self.taken
        self.n_stored = self.n_states if self.all_layers else 0
        self.departures = mertools_departures(params, self.family, self.indices, self.n_states)
        if self.extractor.sampling_rate != SAMPLE_RATE:
            raise InputError(
                f"{STAGE}: {path} expects {self.extractor.sampling_rate} Hz, audio is {SAMPLE_RATE}"
            )
        config = model.config
        self.final_norm = bool(getattr(config, "do_stable_layer_norm", False))
        self.maskable = (
            self.family in MASK_SAFE
            and self.extractor.return_attention_mask
            and getattr(config, "feat_extract_norm", "layer") == "layer"
        )
        if not self.maskable:
            # Group-norm front ends and data2vec-audio's stacked positional convs are not
            # padding-invariant: short clips (and mersemi's chunks) run one at a time.
            log.info(
                "%s: %s is not padding-invariant; one clip per forward pass", path, self.family
            )

    @property
    def batch_size(self) -> int:
        return self.params.batch_size if self.maskable else 1

    @property
    def chunk_samples(self) -> float:
        return self.params.chunk_seconds * SAMPLE_RATE

    def embed(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Clip vectors for float32 16 kHz mono waveforms (each at least 25 ms long)."""
        return self.embed_layers(waves)[0]

    def embed_layers(self, waves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Clip vectors and, with `layers: all`, each state's pooled vector (N, n_states, D):
        its sum (mersemi: mean) over the default states is the clip vector, as pooling is
        linear."""
        mertools = self.params.recipe == "mertools"
        pooled = self._embed_mertools(waves) if mertools else self._embed_mersemi(waves)
        if not self.all_layers:
            return pooled[:, 0].astype(np.float32), None
        return combine_layers(pooled, self.indices, self.params.recipe), pooled.astype(np.float32)

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
        sums = np.zeros((len(waves), self.n_stored or 1, self.dim), dtype=np.float64)
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

    def _states(self, x: torch.Tensor, mask, post_norm: bool) -> list:
        """The chosen hidden states (B, T, D each, in index order) of one forward pass."""
        with LayerStates(self.model.encoder.layers) as cap:
            out = self.model(x, attention_mask=mask)
            states = cap.states(out.last_hidden_state, post_norm=post_norm)
        return [states[i] for i in self.taken]

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """MERTools' FRAME level of one clip: (chunks x T, D) float32, the padded frames of the
        last 10 s chunk included; its UTTERANCE level is the mean of these rows."""
        size = int(round(self.params.chunk_seconds * SAMPLE_RATE))
        x = self.normalize(wave)
        if len(x) > size:
            padded = np.zeros(-(-len(x) // size) * size, dtype=np.float32)
            padded[: len(x)] = x
            x = padded.reshape(-1, size)
        values = torch.from_numpy(np.atleast_2d(x)).to(self.device, self.dtype)
        with torch.inference_mode():
            states = torch.stack(self._states(values, None, post_norm=True)).float()
            states = states[[self.taken.index(i) for i in self.indices]].sum(0)
        return states.reshape(-1, self.dim).cpu().numpy()

    def _run(self, values: np.ndarray, mask, lengths) -> tuple[np.ndarray, np.ndarray]:
        """mertools: per row (B, K, D), the sum over its frames (all of them without a mask,
        the real ones with one) of the sum of the chosen states (K = 1), or of each state
        (`layers: all`); and the frame count."""
        x = torch.from_numpy(values).to(self.device, self.dtype)
        m = None if mask is None else torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            states = torch.stack(self._states(x, m, post_norm=True)).float()
            states = states if self.all_layers else states.sum(0, keepdim=True)
            frames = self.model._get_feat_extract_output_lengths(torch.tensor(lengths))
            frames = frames.clamp(max=states.shape[2]).to(self.device)
            t = torch.arange(states.shape[2], device=self.device)
            keep = (t[None, :] < frames[:, None]).to(torch.float64)
            sums = (states.double() * keep[..., None]).sum(2).transpose(0, 1)
        return sums.cpu().numpy(), frames.cpu().numpy()

    @staticmethod
    def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        if (counts == 0).any():
            bad = int(np.flatnonzero(counts == 0)[0])
            raise ValueError(f"clip {bad}: audio too short for the model (no output frame)")
        return sums / counts[:, None, None]

    def _embed_mersemi(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        p = self.params
        chunks: list[tuple[int, np.ndarray]] = []
        for i, w in enumerate(waves):
            for c in split_chunks(
                np.asarray(w, np.float32), SAMPLE_RATE, p.chunk_seconds, p.min_chunk_seconds
            ):
                chunks.append((i, c))
        sums = np.zeros((len(waves), self.n_stored or 1, self.dim), dtype=np.float64)
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
        """Per chunk (B, K, D): sum over its real frames of the layer-mean hidden state
        (K = 1) or of each state (`layers: all`), and the frame count."""
        enc = self.extractor(
            batch,
            sampling_rate=SAMPLE_RATE,
            padding=True,
            return_tensors="pt",
            return_attention_mask=self.maskable,
        )
        values = enc["input_values"].to(self.device, self.dtype)
        mask = enc.get("attention_mask")
        lengths = torch.tensor([len(c) for c in batch])
        mask = None if mask is None else mask.to(self.device)
        with torch.inference_mode():
            states = torch.stack(self._states(values, mask, post_norm=False)).float()
            states = states if self.all_layers else states.mean(0, keepdim=True)
            frames = self.model._get_feat_extract_output_lengths(lengths).to(self.device)
            t = torch.arange(states.shape[2], device=self.device)
            keep = (t[None, :] < frames[:, None]).to(states.dtype)
            sums = (states * keep[..., None]).sum(2).transpose(0, 1)
        return sums.double().cpu().numpy(), frames.cpu().numpy()

    def meta_params(self) -> dict:
        """What the file's `params` attr records beyond the options: the family, the
        hidden-state indices (of `n_states`; the last is `last_hidden_state` under mertools,
        the last layer's output before any final norm under mersemi) and `layers` resolved."""
        p = self.params
        out = {
            "recipe": p.recipe,
            "model_dir": str(self.model_dir),
            "family": self.family,
            "chunk_seconds": p.chunk_seconds,
            "layers": MERTOOLS_LAYERS[self.family] if p.layers is None else p.layers,
            "hidden_states": self.indices,
            **({"stored_layers": self.taken} if self.all_layers else {}),
            "n_states": self.n_states,
            "precision": str(self.dtype).removeprefix("torch."),
            "departures": self.departures,
        }
        if p.recipe == "mersemi":
            out["min_chunk_seconds"] = p.min_chunk_seconds
        return out

    def describe(self) -> tuple[str, str]:
        """The file's `layers` and `pooling` attrs, in words."""
        p, idx = self.params, self.indices
        last = list(range(self.n_states - len(idx), self.n_states))
        which = f"last {len(idx)}" if idx == last else f"{idx} of {self.n_states}"
        if p.recipe == "mertools":
            norm = "post final LayerNorm" if self.final_norm else "the model has no final norm"
            layers = f"sum of {which} hidden states ({norm})"
            pooling = (f"mean over all frames ({p.chunk_seconds:g} s zero-padded chunks, "
                       "no mask, whole-clip normalisation; MERTools)")  # fmt: skip
        else:
            norm = "pre final LayerNorm" if self.final_norm else "the model has no final norm"
            layers = f"mean of {which} hidden states ({norm})"
            pooling = f"mean over real frames ({p.chunk_seconds:g} s masked chunks)"
        if self.all_layers:
            layers += f"; {stored_layers_note(self.n_stored)}"
        return layers, pooling
