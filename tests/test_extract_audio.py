from pathlib import Path

import numpy as np
import pytest

from mersemi.cli import main
from mersemi.errors import InputError
from mersemi.extract.audio import Params as AudioParams
from mersemi.extract.audio import wavs as audio
from mersemi.extract.audio.wavs import read_wav
from mersemi.extract.cli import run_stage
from mersemi.extract.wav import read_audio_index
from mersemi.fixtures.media import DURATION, TONE_HZ, make_media, write_shard


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    clips = make_media(root / "media")
    return root, clips, write_shard(root / "shard.csv", clips)


def test_wavs_16k_mono_and_invalid_clips(media, tmp_path):
    _, _, shard = media
    out = tmp_path / "audio" / "shard-0000.csv"
    assert main(["extract", "audio", "--shard", str(shard), "--out", str(out)]) == 0
    idx = read_audio_index(out).set_index("name")
    for name in ("face", "面孔_中文", "face2"):
        row = idx.loc[name]
        assert row.valid and row.reason == ""
        x, sr = read_wav(row.wav)
        assert sr == 16000 and x.ndim == 1
        assert abs(len(x) / sr - DURATION) < 0.06 and abs(row.duration - len(x) / sr) < 1e-3
        spec = np.abs(np.fft.rfft(x))
        assert abs(np.argmax(spec) * sr / len(x) - TONE_HZ) < 5
    assert (tmp_path / "audio" / "shard-0000" / "面孔_中文.wav").is_file()
    for name, reason in [
        ("silent", "no_audio"),
        ("corrupt", "decode_error"),
        ("missing", "missing_file"),
    ]:
        row = idx.loc[name]
        assert not row.valid and row.reason == reason and row.wav == "" and row.duration == 0


def test_too_long_and_empty_audio(media, tmp_path, monkeypatch):
    _, clips, _ = media
    shard = write_shard(tmp_path / "s.csv", {"face": clips["face"]})
    idx = run_stage(
        "audio", {"shard": shard, "out": tmp_path / "a.csv", "params": AudioParams(max_seconds=0.5)}
    )
    assert idx.loc[0, "reason"] == "too_long" and not idx.loc[0, "valid"]
    x, sr = read_wav(idx.loc[0, "wav"])
    assert len(x) == sr // 2  # kept, cut at max_seconds

    monkeypatch.setattr(audio, "decode_audio", lambda path, p: np.zeros(0, np.int16))
    idx = run_stage("audio", {"shard": shard, "out": tmp_path / "b.csv", "params": AudioParams()})
    assert idx.loc[0, "reason"] == "empty_audio" and idx.loc[0, "wav"] == ""


def test_index_reader_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_audio_index(tmp_path / "none.csv")
    (tmp_path / "x.csv").write_text("name,wav\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        read_audio_index(tmp_path / "x.csv")


def test_audio_rows_refuses_an_index_of_another_shard(tmp_path):
    from mersemi.errors import InputError
    from mersemi.extract.wav import audio_rows

    index = tmp_path / "shard-0000.csv"
    index.write_text("name,wav,valid,reason,duration,detail\na,a.wav,True,,2.5,\n")
    assert audio_rows(index, ["a"])["a"].duration == 2.5
    with pytest.raises(InputError, match=r"1 clip\(s\) of the shard missing, e.g. \['b'\]"):
        audio_rows(index, ["a", "b"])


def test_names_up_to_the_file_system_limit(media, tmp_path):
    """A 252-character stem + `.ts` is a legal video name (255 bytes); its wav name would not
    be. It gets a shortened, hashed wav, recorded in the index; the other clips are unharmed."""
    _, clips, _ = media
    long_a, long_b = "a" * 251 + "x", "a" * 251 + "y"  # the same first 251 characters
    videos = {}
    for name in (long_a, long_b):
        videos[name] = tmp_path / f"{name}.ts"
        videos[name].write_bytes(clips["face"].read_bytes())
    shard = write_shard(tmp_path / "s.csv", {**videos, "face": clips["face"]})
    idx = run_stage(
        "audio",
        {"shard": shard, "out": tmp_path / "audio" / "shard-0000.csv", "params": AudioParams()},
    )
    assert idx["valid"].all(), idx[["name", "reason", "detail"]]
    wavs = [Path(w) for w in idx["wav"]]
    assert len(set(wavs)) == 3 and all(w.is_file() and len(w.name) <= 255 for w in wavs)
    assert read_wav(wavs[0])[0].size > 0
