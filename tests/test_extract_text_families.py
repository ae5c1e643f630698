"""The text stage's two families against what MERTools' own `extract_text_huggingface.py` wrote
(`shared/fixtures/mertools-zoo`, see its README): chinese-roberta-wwm-ext-large (`BertModel` +
`BertTokenizer`, family encoder) and chinese-alpaca-2-13b (`LlamaForCausalLM` saved in fp16, a
slow SentencePiece `LlamaTokenizer`, family causal), every sentence, through `mersemi extract
text`, on CPU in fp32: max|ours - MERTools| / max|MERTools| <= 1e-5.

The tokenizer and the model are also checked apart: our token ids equal the ids MERTools'
tokenizers produced (`reference.json` -> observed.text_tokens), and the model fed those ids
gives MERTools' vectors."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.text import Params, check_model
from mersemi.extract.text.family import detect_family, hidden_state_indices
from mersemi.extract.text.llm import TextEmbedder
from mersemi.fixtures.shared import max_rel_diff, shared_fixture
from mersemi.store import read_features

FIX = shared_fixture("mertools-zoo", "reference.json", "MERSEMI_MERTOOLS_ZOO_FIXTURE")
TOL = 1e-5
MODELS = {"encoder": "chinese-roberta-wwm-ext-large", "causal": "chinese-alpaca-2-13b"}
CLIPS = ["t01", "t02", "t03", "t04", "t05"]
# what each family is: tokenizer, MERTools' printed span, model class
EXPECTED = {
    "encoder": ("transformers", (1, -1), "BertModel"),
    "causal": ("sentencepiece", (1, None), "LlamaModel"),
}

pytestmark = pytest.mark.skipif(FIX is None, reason="no mertools-zoo fixture")


def model_dir(family: str):
    return FIX / "models" / MODELS[family]


def reference(family: str) -> dict[str, np.ndarray]:
    folder = FIX / "mertools" / "features" / f"{MODELS[family]}-UTT"
    return {f.stem: np.load(f) for f in sorted(folder.glob("*.npy"))}


def transcripts() -> pd.DataFrame:
    return pd.read_csv(FIX / "inputs" / "transcripts.csv", dtype=str, keep_default_na=False)


def observed_tokens(family: str) -> dict[str, list[int]]:
    ref = json.loads((FIX / "reference.json").read_text(encoding="utf-8"))
    seen = ref["observed"]["text_tokens"][MODELS[family]]
    return {s: v["ids"] for s, v in seen.items() if s != "tokenizer_class"}


def params(family: str, **kw) -> Params:
    return Params(model_dir=str(model_dir(family)), device="cpu", **kw)


@pytest.fixture(scope="module")
def stage_out(tmp_path_factory):
    """family -> the feature file `mersemi extract text` wrote from the fixture's transcripts."""
    tmp = tmp_path_factory.mktemp("zoo_text")
    names = transcripts()["name"].tolist()
    shard = tmp / "shard.csv"
    pd.DataFrame({"name": names, "path": [f"/none/{n}" for n in names]}).to_csv(shard, index=False)
    out = {}
    for family in MODELS:
        h5 = tmp / f"{family}.h5"
        p = {"model_dir": str(model_dir(family)), "device": "cpu", "text_col": "chinese"}
        csv = FIX / "inputs" / "transcripts.csv"
        run_stage("text", {"shard": str(shard), "transcripts": str(csv), "out": str(h5),
                           "params": json.dumps(p)})  # fmt: skip
        out[family] = read_features(h5, modality="text")
    return out


@pytest.fixture(scope="module", params=list(MODELS))
def embedder(request):
    return TextEmbedder(params(request.param))


def test_the_fixture_has_every_clip_of_both_families():
    assert transcripts()["name"].tolist() == CLIPS
    for family in MODELS:
        assert sorted(reference(family)) == CLIPS


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("family", list(MODELS))
def test_utterance_feature_equals_mertools(stage_out, family, clip):
    fs = stage_out[family]
    row = list(fs.names).index(clip)
    ref = reference(family)[clip]
    assert fs.features.shape[1] == ref.shape[0] == 32 and bool(fs.valid[row])
    diff = max_rel_diff(fs.features[row], ref)
    print(f"{MODELS[family]} {clip}: max rel {diff:.2g}")
    assert diff <= TOL, (family, clip, diff)


def test_feature_file_names_family_tokenizer_and_states(stage_out):
    for family, fs in stage_out.items():
        p = fs.meta.params
        assert (p["family"], p["tokenizer"], p["hidden_states"]) == (
            family, EXPECTED[family][0], [1, 2, 3, 4])  # fmt: skip
        assert p["precision"] == "float32" and p["departures"] == {}
        assert fs.meta.layers == "sum of last 4 hidden states (post final norm)"
        assert fs.meta.pooling.startswith(f"mean over tokens [{EXPECTED[family][1][0]}:")


def test_family_tokenizer_span_and_fp32(embedder):
    """Detected from config.json; MERTools' probe span; the fp16 LLaMA checkpoint runs in fp32
    on CPU (as transformers 4.28 loaded it)."""
    family = embedder.family
    kind, span, cls = EXPECTED[family]
    assert (embedder.tokenizer_kind, (embedder.start, embedder.end)) == (kind, span)
    assert type(embedder.model).__name__ == cls
    assert {p.dtype for p in embedder.model.parameters()} == {torch.float32}


def test_our_token_ids_are_mertools(embedder):
    """(b) Our tokenizer's ids equal MERTools' (transformers 4.28, `use_fast=False`) for every
    sentence and the probe, spaces kept (t02 starts with a space and has a double one)."""
    for sentence, ids in observed_tokens(embedder.family).items():
        assert embedder.tokenizer(sentence)["input_ids"] == ids, sentence


def test_slow_llama_tokenizer_is_bos_plus_sentencepiece():
    """4.28's slow LlamaTokenizer: [BOS] + SentencePiece's ids of the text as it is (spaces,
    tabs, newlines, emoji through byte fallback), decoding back to the text."""
    import sentencepiece as spm

    from mersemi.extract.text.sp_llama import load_llama_sentencepiece

    path = model_dir("causal")
    sp = spm.SentencePieceProcessor(model_file=str(path / "tokenizer.model"))
    tok = load_llama_sentencepiece(path)
    texts = [*transcripts()["chinese"], "  多个   空格 ", "😀 表情", "\n换行\t制表", "3.05 PPT"]
    for t in texts:
        ids = tok(t)["input_ids"]
        assert ids == [tok.bos_token_id, *sp.encode(t)], t
        assert tok.decode(ids[1:]) == sp.decode(sp.encode(t)), t


def test_mersemi_recipe_on_both_families():
    """recipe mersemi: the mean (not the sum) of the same 4 states over the tokens without
    special tokens: exactly 1/4 of MERTools' vector, except where collapsing whitespace changes
    the tokens (LLaMA keeps spaces as tokens: t02; BERT drops them anyway)."""
    sentences = transcripts()["chinese"].tolist()
    for family in MODELS:
        vecs, _ = TextEmbedder(params(family, recipe="mersemi")).embed(
            [" ".join(t.split()) for t in sentences]
        )
        for clip, v in zip(CLIPS, vecs, strict=True):
            ref = reference(family)[clip]
            if family == "causal" and clip == "t02":
                assert max_rel_diff(v, ref / 4) > 1e-2
            else:
                assert max_rel_diff(v, ref / 4) <= TOL, (family, clip)


def test_model_fed_mertools_ids_equals_mertools(embedder):
    """(a) MERTools' own token ids through our model path: MERTools' vectors."""
    ids = observed_tokens(embedder.family)
    ref = reference(embedder.family)
    for name, sentence in zip(*transcripts().T.values, strict=True):
        t = torch.tensor([ids[sentence]])
        vec, n = embedder._forward_mertools(t, torch.ones_like(t))
        start, end = embedder.start, embedder.end
        assert n[0] == len(ids[sentence][start:end])
        assert max_rel_diff(vec[0], ref[name]) <= TOL, name


def test_layers_as_hidden_state_indices(embedder):
    """A list names states of MERTools' tuple: [-4..-1] is the default (no departure); any
    other list is that sum, logged as a departure; -1 is after the final norm."""
    sentences = transcripts()["chinese"].tolist()
    default, _ = embedder.embed(sentences)
    family = embedder.family
    same = TextEmbedder(params(family, layers=[-4, -3, -2, -1]))
    assert same.departures == {} and same.indices == [1, 2, 3, 4]
    np.testing.assert_array_equal(same.embed(sentences)[0], default)
    other = TextEmbedder(params(family, layers=[0, -1]))
    assert other.departures == {"layers": [0, -1]} and other.indices == [0, 4]
    enc = embedder.tokenizer(sentences[:1], return_tensors="pt")
    with torch.no_grad():
        out = embedder.model(**enc, output_hidden_states=True)
    start, end = embedder.start, embedder.end
    expected = (out.hidden_states[0] + out.last_hidden_state)[0, start:end].mean(0)
    np.testing.assert_allclose(other.embed(sentences[:1])[0][0], expected.numpy(), rtol=1e-5,
                               atol=1e-5 * float(expected.abs().max()))  # fmt: skip


def test_check_model_names_the_family(embedder):
    checks = check_model(params(embedder.family))
    assert all(c.ok for c in checks), checks
    model = next(c for c in checks if c.item == "model")
    assert f"({embedder.family})" in model.detail
    bad = [c for c in check_model(params(embedder.family, layers=[5])) if not c.ok]
    assert [c.item for c in bad] == ["layers"] and "out of range" in bad[0].detail


def test_the_fast_llama_tokenizer_without_protobuf_is_one_line():
    pytest.importorskip("sentencepiece")
    try:
        import google.protobuf  # noqa: F401

        pytest.skip("protobuf installed: AutoTokenizer can convert tokenizer.model")
    except ImportError:
        pass
    with pytest.raises(InputError, match="protobuf") as e:
        TextEmbedder(params("causal", tokenizer="transformers"))
    assert "\n" not in str(e.value) and "tokenizer: auto" in str(e.value)


# --------------------------------------------------------------------------- without models


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "causal"),
        ({"architectures": ["LlamaModel"], "model_type": "llama"}, "causal"),
        (
            {"architectures": ["BaichuanForCausalLM"], "auto_map": {"AutoModelForCausalLM": "m.C"}},
            "causal",
        ),  # fmt: skip
        ({"architectures": ["BertModel"], "model_type": "bert"}, "encoder"),
        ({"architectures": ["BertForMaskedLM"], "model_type": "bert"}, "encoder"),
        ({"model_type": "electra"}, "encoder"),
        ({"model_type": "gpt2"}, "causal"),
    ],
)
def test_family_from_config(config, family):
    assert detect_family(config, "d") == family
    other = "encoder" if family == "causal" else "causal"
    assert detect_family(config, "d", other) == other  # the explicit choice wins


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"model_type": "t5", "is_encoder_decoder": True}, "encoder-decoder"),
        ({"model_type": "mystery"}, "family: encoder or causal"),
    ],  # fmt: skip
)
def test_unknown_family_is_one_line(config, says):
    with pytest.raises(InputError, match=says):
        detect_family(config, "d")


def test_hidden_state_indices():
    assert hidden_state_indices(4, 4) == [1, 2, 3, 4]
    assert hidden_state_indices(5, 4) == [0, 1, 2, 3, 4]
    assert hidden_state_indices([0, -1, 2], 4) == [0, 4, 2]
    for bad, says in [(6, "has 5 states"), ([5], "out of range"), ([-6], "out of range"),
                      ([4, -1], "twice")]:  # fmt: skip
        with pytest.raises(InputError, match=says):
            hidden_state_indices(bad, 4)
    for bad, says in [([], "empty"), ([1.0], "whole numbers"), ([1, 1], "twice"), (0, ">= 1")]:
        with pytest.raises(InputError, match=says):
            TextEmbedder(Params(model_dir="/nowhere", layers=bad))
