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


# text: both families (encoder: chinese-roberta, causal: chinese-alpaca-2), MERTools' recipe


@pytest.fixture(scope="module")
def text_stored(tmp_path_factory):
    """family -> (its `layers: all` file, the FeatureSet) from the fixture's transcripts."""
    import pandas as pd
    from test_extract_text_families import FIX as TFIX
    from test_extract_text_families import MODELS as TEXT_MODELS

    from mersemi.extract.cli import run_stage

    tmp = tmp_path_factory.mktemp("all_text")
    csv = TFIX / "inputs" / "transcripts.csv"
    names = pd.read_csv(csv, dtype=str)["name"].tolist()
    shard = tmp / "shard.csv"
    pd.DataFrame({"name": names, "path": [f"/none/{n}" for n in names]}).to_csv(shard, index=False)
    out = {}
    for family, model in TEXT_MODELS.items():
        h5 = tmp / f"{family}.h5"
        p = {"model_dir": str(TFIX / "models" / model), "device": "cpu", "text_col": "chinese",
             "layers": "all"}  # fmt: skip
        run_stage("text", {"shard": str(shard), "transcripts": str(csv), "out": str(h5),
                           "params": json.dumps(p)})  # fmt: skip
        out[family] = (h5, read_features(h5, modality="text"))
    return out


@pytest.mark.parametrize("family", ["encoder", "causal"])
def test_text_every_layer_equals_output_hidden_states(text_stored, family):
    """Layer k of the file is transformers' hidden_states[k] (the last: last_hidden_state,
    after the final norm as MERTools' tuple had it) over MERTools' token span; `features` is
    still MERTools' UTTERANCE file, the sum of the last 4 stored layers."""
    from test_extract_text_families import params as text_params
    from test_extract_text_families import reference as text_reference
    from test_extract_text_families import transcripts

    from mersemi.extract.text.llm import TextEmbedder

    path, fs = text_stored[family]
    layers = read_layers(path)
    e = TextEmbedder(text_params(family))
    assert layers.shape == (len(fs.names), e.n_layers + 1, 32)
    sentences = dict(zip(*transcripts()[["name", "chinese"]].T.values, strict=True))
    worst = 0.0
    for row, name in enumerate(fs.names):
        enc = e.tokenizer(sentences[name], return_tensors="pt")
        with torch.no_grad():
            out = e.model(**enc, output_hidden_states=True)
        states = [*out.hidden_states[:-1], out.last_hidden_state]
        for k, h in enumerate(states):
            pooled = h[0, e.start : e.end].double().mean(0).numpy()
            worst = max(worst, max_rel_diff(layers[row, k], pooled))
        assert max_rel_diff(fs.features[row], text_reference(family)[name]) <= TOL
    print(f"text {family}: layers all vs output_hidden_states: max rel diff {worst:.2g}")
    assert worst <= TOL
    np.testing.assert_allclose(fs.features, layers[:, -4:].sum(1), rtol=1e-5, atol=1e-6)
    p = dict(fs.meta.params)
    assert p["hidden_states"] == [1, 2, 3, 4] and p["stored_layers"] == [0, 1, 2, 3, 4]
    assert p["departures"] == {} and "each of the 5 states" in fs.meta.layers


def test_text_layers_all_is_checked_as_a_word():
    from mersemi.extract.text import Params as TextParams

    with pytest.raises(InputError, match="'every' is not an int"):
        TextParams(layers="every").check()


# visual: data2vec-vision (frame-wise) and VideoMAE (one 16-frame video), MERTools' pooling


@pytest.mark.parametrize("name", ["data2vec-vision-base-ft1k", "videomae-base"])
def test_visual_every_layer_equals_output_hidden_states(tmp_path, name):
    """Layer k of the file is transformers' hidden_states[k] pooled by MERTools' recipe for the
    family (data2vec-vision: summed over the tokens, mean over every frame; VideoMAE: 16 sampled
    frames, mean over each tubelet's patches, mean over the tubelets); `features` is still
    MERTools' UTTERANCE file."""
    from test_extract_visual_families import VIDEOS, crops, write_inputs
    from test_extract_visual_families import model_dir as visual_dir
    from test_extract_visual_families import reference as visual_reference

    from mersemi.extract.cli import run_stage
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import make_encoder

    faces, shard = write_inputs(tmp_path)
    out = tmp_path / "v.h5"
    p = {"checkpoint": str(visual_dir(name)), "device": "cpu", "layers": "all"}
    run_stage("visual", {"shard": str(shard), "faces": str(faces), "out": str(out),
                         "params": json.dumps(p)})  # fmt: skip
    fs = read_features(out, modality="visual")
    layers = read_layers(out)
    hf = make_encoder(VisualParams(checkpoint=str(visual_dir(name)), device="cpu")).hf
    n_states, data = len(hf.layers) + 1, crops()
    assert layers.shape == (len(VIDEOS), n_states, fs.meta.dim)
    worst = 0.0
    for row, video in enumerate(fs.names):
        x = torch.stack(hf.prepare(data[video]))
        with torch.no_grad():
            hs = hf.model(pixel_values=x, output_hidden_states=True).hidden_states
        assert len(hs) == n_states
        for k, h in enumerate(hs):
            pooled = hf._pool(h.double()).mean(0).numpy()
            worst = max(worst, max_rel_diff(layers[row, k], pooled))
        assert max_rel_diff(fs.features[row], visual_reference(name, video)) <= TOL
    print(f"visual {name}: layers all vs output_hidden_states: max rel diff {worst:.2g}")
    assert worst <= TOL
    assert fs.meta.params["stored_layers"] == list(range(n_states))
    assert "pooled alike" in fs.meta.layers


def test_visual_layers_all_is_refused_for_clip():
    from test_extract_visual_families import model_dir as visual_dir

    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import make_encoder

    with pytest.raises(InputError, match="a CLIP feature is its image embedding"):
        make_encoder(VisualParams(checkpoint=str(visual_dir("clip-vit-base-patch32")),
                                  device="cpu", layers="all"))  # fmt: skip
    with pytest.raises(InputError, match="'every' is not null"):
        VisualParams(layers="every").check()
