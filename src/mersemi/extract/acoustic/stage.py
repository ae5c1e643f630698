"""The acoustic stage's run: the family's embedder over a shard's wavs, one row per clip."""

import numpy as np

from ...store import FeatureMeta
from ..common import Outcome, meta_params, prefetch, progress, read_shard, write_feature_shard
from ..wav import audio_rows, load_wave_for_clip
from . import STAGE, Params
from .speech import SpeechEmbedder, load_family

# Options that a family does not read: left out of its file's `params` attr.
UNUSED = {
    "whisper": ("chunk_seconds", "min_chunk_seconds"),
    **{f: ("whisper_output",) for f in ("hubert", "wav2vec2", "wavlm", "data2vec-audio")},
}


def load_embedder(params: Params):
    """The embedder of the model directory's family: `SpeechEmbedder` (HuBERT, wav2vec2,
    WavLM, data2vec-audio) or `WhisperEmbedder`."""
    _, family = load_family(params)
    if family == "whisper":
        from .whisper import WhisperEmbedder

        return WhisperEmbedder(params)
    return SpeechEmbedder(params)


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
    embedder = load_embedder(params)
    outcome = Outcome([c.name for c in clips])
    features = np.zeros((len(clips), embedder.dim), dtype=np.float32)
    n_stored = embedder.n_stored  # `layers: all`: every state's vector too
    stack = np.zeros((len(clips), n_stored, embedder.dim), np.float32) if n_stored else None
    chunk_len = embedder.chunk_samples
    group: list[tuple[int, np.ndarray]] = []
    n_chunks = 0

    def flush():
        nonlocal group, n_chunks
        if group:
            rows, batch = [i for i, _ in group], [w for _, w in group]
            if stack is None:
                features[rows] = embedder.embed(batch)
            else:
                features[rows], stack[rows] = embedder.embed_layers(batch)
        group, n_chunks = [], 0

    waves = clip_waves(clips, args.audio_index, outcome, params.workers, params.prefetch)
    for i, wave in progress(waves, total=len(clips), desc="acoustic", unit="clip"):
        group.append((i, wave))
        n_chunks += max(1, int(np.ceil(len(wave) / chunk_len)))
        # A few batches' worth of clips at a time: enough to sort chunks by length.
        if n_chunks >= 4 * embedder.batch_size:
            flush()
    flush()
    layers, pooling = embedder.describe()
    recorded = {**meta_params(params), **embedder.meta_params()}
    for key in UNUSED[embedder.family]:
        recorded.pop(key, None)
    meta = FeatureMeta(
        modality="acoustic",
        model=str(embedder.model_dir),
        layers=layers,
        pooling=pooling,
        dim=embedder.dim,
        params=recorded,
    )
    write_feature_shard(args.out, meta, outcome, features, STAGE, stack)
