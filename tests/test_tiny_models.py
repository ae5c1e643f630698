import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import tiny_model

from mersemi.cli import main

# TorchScript is WeNet's runtime format, deprecated upstream or not.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit:FutureWarning")


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writers_are_deterministic(tmp_path):
    from mersemi.demo.tiny.hubert import write_tiny_hubert
    from mersemi.demo.tiny.llm import write_tiny_llm
    from mersemi.demo.tiny.wenet import write_tiny_wenet

    again = {
        "hubert": write_tiny_hubert(tmp_path / "hubert"),
        "wenet": write_tiny_wenet(tmp_path / "wenet"),
        "llm": write_tiny_llm(tmp_path / "llm"),
    }
    for kind in ("hubert", "llm"):
        f = "model.safetensors"
        assert _digest(again[kind] / f) == _digest(tiny_model(kind) / f), kind
    # The TorchScript zip records its archive name, so compare the weights it holds.
    import torch

    a = torch.jit.load(str(again["wenet"] / "final.zip")).state_dict()
    b = torch.jit.load(str(tiny_model("wenet") / "final.zip")).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (again["wenet"] / "units.txt").read_text("utf-8") == (
        tiny_model("wenet") / "units.txt"
    ).read_text("utf-8")


def test_tokenizer_covers_chinese():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("llm"))
    ids = tok("他说：“今天的会议改到下午三点，别迟到！”OK?")["input_ids"]
    assert tok.unk_token_id not in ids
    assert ids[0] == tok.bos_token_id and len(ids) == 1 + 24


def test_wenet_runtime_methods():
    import torch

    from mersemi.extract.asr.units import read_units

    m = torch.jit.load(str(tiny_model("wenet") / "final.zip"))
    units = read_units(tiny_model("wenet") / "units.txt")
    assert units[0] == "<blank>" and units[-1] == "<sos/eos>"
    assert m.subsampling_rate() == 4 and m.right_context() == 6
    assert m.sos_symbol() == m.eos_symbol() == len(units) - 1
    assert m.is_bidirectional_decoder() is False
    empty = torch.zeros(0, 0, 0, 0)
    out, att, cnn = m.forward_encoder_chunk(torch.randn(1, 67, 80), 0, -1, empty, empty)
    assert out.shape[:2] == (1, 16) and att.numel() == 0 and cnn.numel() == 0
    assert m.ctc_activation(out).shape == (1, 16, len(units))


def test_models_tiny_command_loads_through_the_stage_loaders(tmp_path, capsys):
    from mersemi.extract import acoustic, asr, text
    from mersemi.extract.acoustic.speech import SpeechEmbedder
    from mersemi.extract.asr.recognizer import WenetRecognizer
    from mersemi.extract.text.llm import TextEmbedder

    assert main(["models", "tiny", "--out", str(tmp_path / "m")]) == 0
    params = json.loads((tmp_path / "m" / "models.json").read_text("utf-8"))
    assert json.loads(capsys.readouterr().out) == params
    assert set(params) == {"acoustic", "asr", "text", "visual", "zoo"}
    for key, value in params["visual"].items():
        if key != "model_name":
            assert (tmp_path / "m" / "clip") in Path(value).parents, value
    hub = SpeechEmbedder(acoustic.Params(**params["acoustic"]))
    assert hub.embed([np.zeros(16000, np.float32)]).shape == (1, 32)
    rec = WenetRecognizer(asr.Params(**params["asr"]))
    assert isinstance(rec.recognize(np.zeros(16000, np.float32)), str)
    emb = TextEmbedder(text.Params(**params["text"]))
    assert emb.embed(["你好"])[0].shape == (1, 32)
    # the zoo: one more family per modality, each a `features:` entry (config.zoo.yaml)
    zoo = params["zoo"]
    assert {k: v["modality"] for k, v in zoo.items()} == {
        "wavlm": "acoustic", "dinov2": "visual", "bert": "text",
    }  # fmt: skip
    wavlm = SpeechEmbedder(acoustic.Params(**zoo["wavlm"]["params"]))
    assert wavlm.embed([np.zeros(16000, np.float32)]).shape == (1, 24)
    bert = TextEmbedder(text.Params(**zoo["bert"]["params"]))
    assert bert.embed(["你好"])[0].shape == (1, 48)
    assert (Path(zoo["dinov2"]["params"]["checkpoint"]) / "preprocessor_config.json").is_file()
    assert not list((tmp_path / "m").glob(".*"))  # no temp folders left behind
    assert not list((tmp_path / "m" / "zoo").glob(".*"))


def test_zoo_writers_are_deterministic_and_their_tokenizer_covers_the_demo(tmp_path):
    from transformers import AutoTokenizer

    from mersemi.demo.tiny.zoo import WRITERS
    from mersemi.demo.videos import TEMPLATES

    for name, write in WRITERS.items():
        a, b = write(tmp_path / "a" / name), write(tmp_path / "b" / name)
        f = "model.safetensors"
        assert _digest(a / f) == _digest(b / f), name
    tok = AutoTokenizer.from_pretrained(tmp_path / "a" / "bert")
    for template in (t for ts in TEMPLATES.values() for t in ts):
        ids = tok(template.format(who="老王", what="那封信"))["input_ids"]
        assert tok.unk_token_id not in ids, template
    ids = tok("今天天气真好")["input_ids"]  # MERTools' probe: [CLS] 6 characters [SEP]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and len(ids) == 8
