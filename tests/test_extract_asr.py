import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers.tiny_models import SR, tiny_model, tone, write_audio_index, write_shard

from mersemi.errors import InputError
from mersemi.extract.asr import Params
from mersemi.extract.asr.cer import character_error_rate, edit_distance
from mersemi.extract.asr.fbank import fbank
from mersemi.extract.asr.merge import merge_transcripts
from mersemi.extract.asr.recognizer import WenetRecognizer
from mersemi.extract.asr.units import read_units, units_to_text
from mersemi.extract.asr.wenet_decode import ctc_greedy, ctc_prefix_beam
from mersemi.extract.cli import run_stage


def test_fbank_is_80_bin_kaldi_framing():
    f = fbank(tone(440, 1.0))
    assert f.shape == (1 + (SR - 400) // 160, 80)  # 25 ms window, 10 ms shift, snip edges
    assert np.isfinite(f).all()
    assert fbank(np.zeros(100, np.float32)).shape == (0, 80)
    # A louder signal has more energy in every band.
    assert (fbank(tone(440, 1.0) * 2).mean(0) > f.mean(0)).all()


def _logp(path_probs):
    return np.log(np.asarray(path_probs, dtype=np.float64))


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    # frames: a a _ a b b _
    ids = [1, 1, 0, 1, 2, 2, 0]
    logp = np.full((len(ids), 3), -10.0)
    logp[np.arange(len(ids)), ids] = 0.0
    assert ctc_greedy(logp) == [1, 1, 2]


def _brute_force_best(logp):
    """Most probable label sequence, summing every alignment (exact, tiny cases only)."""
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(logp.shape[1]), repeat=logp.shape[0]):
        seq, prev = [], -1
        for u in path:
            if u != prev and u != 0:
                seq.append(u)
            prev = u
        p = math.exp(sum(logp[t, u] for t, u in enumerate(path)))
        totals[tuple(seq)] = totals.get(tuple(seq), 0.0) + p
    return list(max(totals, key=totals.get))


def test_prefix_beam_finds_the_most_probable_labelling():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.dirichlet(np.ones(3) * 0.7, size=5)
        logp = np.log(p)
        assert ctc_prefix_beam(logp, beam=3) == _brute_force_best(logp)
    # The classic case where best path and best labelling differ.
    logp = _logp([[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]])
    assert ctc_greedy(logp) == []
    assert ctc_prefix_beam(logp, beam=3) == [1]


def test_units_and_text_mapping(tmp_path):
    units = ["<blank>", "<unk>", "你", "好", "▁HELLO", "▁WORLD", "<sos/eos>"]
    assert units_to_text([2, 3, 1, 6], units) == "你好"
    assert units_to_text([2, 4, 5, 3], units) == "你 HELLO WORLD好"
    p = tmp_path / "units.txt"
    p.write_text("".join(f"{u} {i}\n" for i, u in reversed(list(enumerate(units)))), "utf-8")
    assert read_units(p) == units
    p.write_text("<blank> 0\n你 2\n", "utf-8")
    with pytest.raises(InputError, match="ids"):
        read_units(p)


def test_cer_on_known_strings():
    assert edit_distance("今天天气很好", "今天天汽很") == 2  # one substitution, one deletion
    assert edit_distance("", "abc") == 3
    r = character_error_rate(["今天天气很好。", "你好！"], ["今天天汽很", "你 好"])
    assert r["ref_chars"] == 8 and r["edits"] == 2 and r["cer"] == pytest.approx(0.25)
    assert character_error_rate([], [])["cer"] is None
    assert character_error_rate(["Hello, World"], ["hello world"])["cer"] == 0.0


def test_merge_provided_wins():
    rows = merge_transcripts(["a", "b", "c"], {"a": "识别", "b": "识别二"}, {"a": "提供的"})
    assert rows == [("a", "提供的", "provided"), ("b", "识别二", "asr"), ("c", "", "none")]


@pytest.fixture(scope="module")
def recognizer():
    return WenetRecognizer(Params(model_dir=str(tiny_model("wenet")), device="cpu"))


def test_tiny_wenet_through_the_runtime_interface(recognizer):
    assert recognizer.subsampling == 4 and recognizer.context == 7
    logp = recognizer.log_probs(fbank(tone(300, 2.0)))
    frames = 1 + (2 * SR - 400) // 160
    assert logp.shape == (((frames - 1) // 2 - 1) // 2, len(recognizer.units))  # 4x subsampling
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, rtol=1e-5)
    text = recognizer.recognize(tone(300, 2.0))
    assert text == recognizer.recognize(tone(300, 2.0))  # deterministic
    assert "<" not in text
    streaming = WenetRecognizer(
        Params(model_dir=str(tiny_model("wenet")), device="cpu", chunk_size=8)
    )
    f = fbank(tone(300, 2.0))
    np.testing.assert_allclose(streaming.log_probs(f), recognizer.log_probs(f), atol=1e-5)


def decode_and_merge(tmp_path, shard, index, provided):
    """The asr stage on the tiny WeNet model, then the transcripts merge with `provided`:
    the merged shard CSV's path."""
    decoded = tmp_path / "asr" / "shard-0000.csv"
    out = tmp_path / "transcripts" / "shard-0000.csv"
    params = {"model_dir": str(tiny_model("wenet")), "device": "cpu"}
    run_stage(
        "asr",
        {"shard": str(shard), "out": str(decoded), "audio_index": str(index), "params": params},
    )
    run_stage(
        "transcripts",
        {"shard": str(shard), "out": str(out), "asr": str(decoded), "provided": str(provided)}
        | {"cer_json": None, "params": params},
    )
    return out


def test_stage_provided_transcripts_win_and_cer_is_reported(tmp_path, recognizer):
    waves = {"a": tone(220, 1.5), "b": tone(660, 2.0, seed=1), "c": "no_audio", "d": "no_audio"}
    index = write_audio_index(tmp_path / "audio" / "shard-0000", waves)
    shard = write_shard(tmp_path / "shard.csv", ["a", "b", "c", "d"])
    provided = tmp_path / "transcripts.csv"
    pd.DataFrame({"name": ["a", "c", "zz"], "chinese": ["我很高兴。", "你好", "别的"]}).to_csv(
        provided, index=False
    )
    out = decode_and_merge(tmp_path, shard, index, provided)
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["name", "text", "source"]
    got = df.set_index("name").to_dict("index")
    assert got["a"] == {"text": "我很高兴。", "source": "provided"}
    assert got["c"] == {"text": "你好", "source": "provided"}  # no audio, but a transcript
    assert got["b"]["source"] == "asr"
    assert got["b"]["text"] == recognizer.recognize(tone(660, 2.0, seed=1))
    assert got["d"] == {"text": "", "source": "none"}
    report = json.loads(out.with_name("shard-0000.cer.json").read_text("utf-8"))
    hyp_a = recognizer.recognize(tone(220, 1.5))
    expected = character_error_rate(["我很高兴。"], [hyp_a])
    assert report["utterances"] == 1 and report["cer"] == pytest.approx(expected["cer"])
    assert report["provided"] == 2 and report["recognised"] == 2
    reasons = pd.read_csv(out.with_name("shard-0000.reasons.csv"), keep_default_na=False)
    assert reasons.set_index("name").loc["d", "reason"] == "no_audio"


def test_transcripts_pandas_reads_as_missing_get_asr_text(tmp_path, recognizer, caplog):
    """A transcript CSV written by pandas from missing values holds `NaN`, `nan`, `None`:
    such a cell is no transcript (the clip gets its ASR text), counted and warned about."""
    waves = {"a": tone(220, 1.5), "b": tone(660, 2.0, seed=1), "c": tone(440, 1.0, seed=2)}
    waves |= {"d": tone(330, 1.2, seed=3), "e": "no_audio"}
    index = write_audio_index(tmp_path / "audio" / "shard-0000", waves)
    shard = write_shard(tmp_path / "shard.csv", list(waves))
    provided = tmp_path / "transcripts.csv"
    provided.write_text(
        "name,chinese\na,我很高兴。\nb,NaN\nc, nan \nd,None\ne,N/A\n", encoding="utf-8"
    )
    with caplog.at_level("WARNING", logger="mersemi.extract.asr.merge"):
        out = decode_and_merge(tmp_path, shard, index, provided)
    got = pd.read_csv(out, keep_default_na=False).set_index("name").to_dict("index")
    assert got["a"] == {"text": "我很高兴。", "source": "provided"}
    for n, seed, seconds, hz in (("b", 1, 2.0, 660), ("c", 2, 1.0, 440), ("d", 3, 1.2, 330)):
        assert got[n] == {
            "text": recognizer.recognize(tone(hz, seconds, seed=seed)),
            "source": "asr",
        }
    assert got["e"] == {"text": "", "source": "none"}
    report = json.loads(out.with_name("shard-0000.cer.json").read_text("utf-8"))
    assert report["provided"] == 1 and report["utterances"] == 1
    assert report["provided_missing"] == 4
    assert report["provided_missing_examples"] == ["b", "c", "d", "e"]
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("asr.merge")]
    assert len(warnings) == 1
    assert str(provided) in warnings[0] and "4 cell(s) hold no text" in warnings[0]


def test_decoding_mode_only_without_transcripts_gives_the_same_transcripts(tmp_path):
    """A dataset without transcripts decodes only the configured mode: the same merged
    transcripts as decoding every mode, and only that mode's column."""
    waves = {"a": tone(220, 1.5), "b": tone(660, 2.0, seed=1), "c": "no_audio"}
    index = write_audio_index(tmp_path / "audio" / "shard-0000", waves)
    shard = write_shard(tmp_path / "shard.csv", list(waves))
    params = {"model_dir": str(tiny_model("wenet")), "device": "cpu"}
    merged = {}
    for modes in ("all", "decoding"):
        decoded = tmp_path / modes / "asr.csv"
        run_stage(
            "asr",
            {"shard": str(shard), "out": str(decoded), "audio_index": str(index), "modes": modes}
            | {"params": params},
        )
        info = json.loads(decoded.with_name("asr.decode.json").read_text("utf-8"))
        if modes == "decoding":
            assert info["modes"] == [info["decoding"]]
            assert info["decoding"] in pd.read_csv(decoded).columns
        out = tmp_path / modes / "transcripts.csv"
        run_stage(
            "transcripts",
            {"shard": str(shard), "out": str(out), "asr": str(decoded), "provided": None}
            | {"cer_json": None, "params": params},
        )
        merged[modes] = out.read_text("utf-8")
    assert merged["decoding"] == merged["all"]
    assert "asr" in merged["all"]


def test_missing_model_dir_names_the_key(tmp_path):
    with pytest.raises(InputError, match="model_dir"):
        WenetRecognizer(Params())
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "units.txt").write_text("<blank> 0\n", "utf-8")
    with pytest.raises(InputError, match="final.zip"):
        WenetRecognizer(Params(model_dir=str(tmp_path / "m")))


def test_merge_without_asr_on_provided_ignores_the_asr_of_provided_clips():
    """As when such clips were not decoded: their ASR is neither used, scored nor failed."""
    from mersemi.extract.asr.merge import merge

    decoded = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "text": ["识别一", "", "识别三"],
            "source": ["asr", "none", "asr"],
            "audio_valid": ["True", "True", "False"],
            "reason": ["", "decode_error", "no_audio"],
            "detail": ["", "bad", "from the audio stage"],
            "ctc_greedy": ["识别一", "", ""],
            "ctc_prefix_beam": ["识别一", "", ""],
        }
    ).set_index("name", drop=False)
    modes = ["ctc_greedy", "ctc_prefix_beam"]
    info = {"model_dir": "m", "decoding": "ctc_prefix_beam", "has_decoder": False,
            "bidirectional": False, "device": "cpu", "modes": modes}  # fmt: skip
    provided = {"a": "提供一", "b": "提供二"}
    rows, outcome, report = merge(
        ["a", "b", "c"], decoded, info, provided, Params(asr_on_provided=False)
    )
    assert rows == [("a", "提供一", "provided"), ("b", "提供二", "provided"), ("c", "", "none")]
    assert outcome.valid.tolist() == [True, True, False] and outcome.reasons[2] == "no_audio"
    assert report["recognised"] == 0 and report["cer"] is None
    rows, outcome, report = merge(["a", "b", "c"], decoded, info, provided, Params())
    assert outcome.valid.tolist() == [True, False, False] and outcome.reasons[1] == "decode_error"
    assert report["recognised"] == 1 and report["utterances"] == 1
