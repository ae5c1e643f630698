"""What the installed transformers' `hidden_states` tuple means, against the tensors
`hidden.LayerStates` takes explicitly. The stages do not read the tuple; these tests fail when
a transformers release changes its meaning, so the docs (and the mersemi recipe's "the last 4
hidden states") are looked at again rather than silently describing other tensors."""

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_model

from mersemi.extract.hidden import LayerStates
from mersemi.fixtures.shared import shared_fixture

FIX = shared_fixture("mertools-features", "reference.json", "MERSEMI_MERTOOLS_FIXTURE")


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def hubert(path):
    from transformers import HubertModel

    return HubertModel.from_pretrained(path).eval()


@pytest.mark.skipif(FIX is None, reason="no mertools-features fixture")
def test_hubert_large_family_tuple_is_pre_final_layernorm():
    """chinese-hubert-large's family (do_stable_layer_norm): under transformers 5 the tuple
    ends with the last layer's output *before* the final LayerNorm; MERTools' tuple (4.28)
    ended with the output after it. So MERTools' set = tuple[:-1] + (last_hidden_state,)."""
    model = hubert(FIX / "models" / "hubert")
    assert model.config.do_stable_layer_norm
    x = torch.from_numpy(np.random.RandomState(0).randn(1, 16000).astype(np.float32))
    with torch.no_grad(), LayerStates(model.encoder.layers) as cap:
        out = model(x, output_hidden_states=True)
    hs = out.hidden_states
    assert same(hs, cap.states(out.last_hidden_state, post_norm=False))  # transformers 5
    mertools = cap.states(out.last_hidden_state, post_norm=True)
    assert same((*hs[:-1], out.last_hidden_state), mertools)
    assert not torch.allclose(hs[-1], out.last_hidden_state)  # the two sets really differ


def test_tiny_llama_tuple_ends_after_the_final_norm():
    """The demo's tiny Llama: transformers 5's tuple ends with the final norm's output, as
    MERTools' tuple did (recipe mertools takes the same set explicitly)."""
    from mersemi.extract.text.llm_load import load_base_model, load_tokenizer

    path = tiny_model("llm")
    tok = load_tokenizer(path, False)
    model, config, _ = load_base_model(path, False, torch.float32, torch.device("cpu"))
    from mersemi.extract.text.llm import decoder_layers

    layers = decoder_layers(model, int(config.num_hidden_layers))
    enc = tok(["你好，世界"], return_tensors="pt")
    with torch.no_grad(), LayerStates(layers) as cap:
        out = model(**enc, output_hidden_states=True)
    assert same(out.hidden_states, cap.states(out.last_hidden_state, post_norm=True))


def test_layer_states_needs_every_layer_once():
    layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    with LayerStates(layers) as cap:
        layers[0](torch.zeros(1, 2))
    with pytest.raises(RuntimeError, match="did not run each layer once"):
        cap.states(None, post_norm=True)
    assert not any(m._forward_pre_hooks for m in layers)  # hooks removed on exit
