"""`layers: all` (the layer probe): every hidden state's pooled vector stored in the file's
`layers` dataset beside `features`, which keeps MERTools' choice. Checked against MERTools'
own UTTERANCE files (shared/fixtures/mertools-zoo) for `features`, and against transformers'
`output_hidden_states` pooled by MERTools' recipe for each layer; the shard merge carries it
and the feature benchmark gives one row per stored layer."""

import json

import h5py
import numpy as np
import pytest
import torch
from test_extract_audio_families import FIX, TOL, WAVS, model_dir, reference, run_acoustic

from mersemi.errors import InputError
from mersemi.extract.acoustic import Params
from mersemi.extract.acoustic.stage import load_embedder
from mersemi.extract.wav import load_wave
from mersemi.fixtures.shared import max_rel_diff
from mersemi.store import merge_features, read_features, read_layers

pytestmark = pytest.mark.skipif(FIX is None, reason="no mertools-zoo fixture")


def mertools_pooled(e, wave, k: int) -> np.ndarray:
    """MERTools' pooling of one state of transformers' tuple: the whole clip normalised,
    zero-padded 10 s chunks, the mean over every frame of every chunk."""
    x, size = e.normalize(wave), 160000
    if len(x) > size:
        x = np.pad(x, (0, -len(x) % size)).reshape(-1, size)
    with torch.no_grad():
        hs = e.model(torch.from_numpy(np.atleast_2d(x)), output_hidden_states=True).hidden_states
    return hs[k].reshape(-1, hs[k].shape[-1]).double().mean(0).numpy()


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    out = tmp_path_factory.mktemp("all") / "s"
    out.mkdir()
    fs = run_acoustic(out, {"model_dir": model_dir("wavlm-base"), "layers": "all"})
    return out / "acoustic.h5", fs


def test_every_layer_equals_output_hidden_states(stored):
    """wavlm-base has no final norm, so its tuple is MERTools' set of states: layer k of the
    file equals hidden_states[k] pooled, for k = 0 (the embeddings) .. 4."""
    path, fs = stored
    layers = read_layers(path)
    assert layers.shape == (len(WAVS), 5, 32)
    e = load_embedder(Params(model_dir=model_dir("wavlm-base"), device="cpu"))
    worst = 0.0
    for row, name in enumerate(fs.names):
        wave = load_wave(FIX / "inputs" / "wavs" / f"{name}.wav")
        for k in range(5):
            worst = max(worst, max_rel_diff(layers[row, k], mertools_pooled(e, wave, k)))
    print(f"layers all vs output_hidden_states: max rel diff {worst:.2g}")
    assert worst <= TOL


def test_features_keep_mertools_choice(stored):
    """`features` is still MERTools' UTTERANCE feature (the sum of the last 4 states), and
    the sum of the stored layers 1..4; the attrs say which states are stored."""
    path, fs = stored
    layers = read_layers(path)
    for row, name in enumerate(fs.names):
        assert max_rel_diff(fs.features[row], reference("wavlm-base", "UTT", name)) <= TOL
    np.testing.assert_allclose(fs.features, layers[:, 1:].sum(1), rtol=1e-5, atol=1e-6)
    p = dict(fs.meta.params)
    assert p["layers"] == "all" and p["hidden_states"] == [1, 2, 3, 4]
    assert p["stored_layers"] == [0, 1, 2, 3, 4] and "each of the 5 states" in fs.meta.layers
    assert read_layers(path, 2).shape == (len(WAVS), 32)


def test_merge_carries_the_layers(stored, tmp_path):
    """Two shards merged keep each clip's stacked layers; a file without them has none."""
    path, fs = stored
    with h5py.File(path) as f:
        names = list(f["names"].asstr()[:])
    # the same file twice, each shard owning half of the clips
    owners = {n: ("0000" if i < 2 else "0001") for i, n in enumerate(names)}
    out = tmp_path / "merged.h5"
    merge_features([path, path], out, owners, ["0000", "0001"])
    np.testing.assert_array_equal(read_layers(out), read_layers(path))
    assert read_features(out).meta.digest == fs.meta.digest


def test_layers_all_is_refused_where_it_means_nothing():
    with pytest.raises(InputError, match="layers: all is for the families"):
        load_embedder(Params(model_dir=model_dir("whisper-base"), device="cpu", layers="all"))
    with pytest.raises(InputError, match="'every' is not null"):
        Params(layers="every").check()


def test_feature_benchmark_has_a_row_per_layer(stored, tmp_path):
    """The benchmark expands a set with stored layers into `<set>@L<k>`, one row per layer
    beside the set's own row (its default features)."""
    from mersemi.train.featurebench import FeatureSet, Sets, expand_layers

    path, fs = stored
    manifest = tmp_path / "manifest.csv"
    labels = ["happy", "sad", "angry", "neutral"]
    manifest.write_text(
        "name,path,split,label,shard\n"
        + "".join(
            f"{n},/v/{n}.mp4,train,{lab},0\n" for n, lab in zip(fs.names, labels, strict=True)
        )
    )
    sets = expand_layers([FeatureSet("wavlm", "acoustic", str(path))])
    assert [s.name for s in sets] == ["wavlm", *(f"wavlm@L{k}" for k in range(5))]
    store = Sets(sets, manifest)
    ds = store.dataset(("wavlm@L2",))
    np.testing.assert_array_equal(ds.features["acoustic"], read_layers(path, 2))
    assert json.dumps(store.meta("wavlm@L2"))  # the table's provenance names the layer
    assert store.meta("wavlm@L2")["layer"] == 2
