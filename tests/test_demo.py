"""The demo dataset: MER2024 layout, decodable clips with detectable faces, per-class cues,
determinism."""

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.manifest import build_manifest

from mersemi.classes import CLASSES
from mersemi.cli import main
from mersemi.demo import media
from mersemi.demo.videos import DemoConfig, class_counts, make_demo, plan
from mersemi.errors import InputError
from mersemi.ffmpeg_bin import ffmpeg_exe

CFG = DemoConfig(seed=7, n_labeled=12, n_unlabeled=6, n_test=6)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--out", str(out), "--seed", str(CFG.seed), "--n-labeled", "12"]
    assert main([*args, "--n-unlabeled", "6", "--n-test", "6"]) == 0
    return out


@pytest.fixture(scope="module")
def truth(demo_dir) -> pd.DataFrame:
    return pd.read_csv(demo_dir / "demo_truth.csv", dtype=str)


def _path(demo_dir: Path, row) -> Path:
    return demo_dir / ("labeled" if row.split == "train" else "unlabeled") / f"{row.name}.mp4"


def _frames(path: Path) -> np.ndarray:
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, media.FRAME_SIZE, media.FRAME_SIZE, 3)


def _audio(path: Path) -> np.ndarray:
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1"]
    raw = subprocess.run([*cmd, "-ar", "16000", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768


def _probe(path: Path) -> str:
    # `ffmpeg -i` without an output prints the stream summary to stderr and exits 1.
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr


def test_layout_and_csvs(demo_dir, truth):
    labeled = sorted(p.stem for p in (demo_dir / "labeled").glob("*.mp4"))
    unlabeled = sorted(p.stem for p in (demo_dir / "unlabeled").glob("*.mp4"))
    assert len(labeled) == 12 and len(unlabeled) == 12  # 6 unlabeled + 6 hidden test clips
    assert all(n.startswith("sample_") and len(n) == len("sample_00000123") for n in labeled)

    labels = pd.read_csv(demo_dir / "labels.csv", dtype=str)
    tests = pd.read_csv(demo_dir / "test_labels.csv", dtype=str)
    texts = pd.read_csv(demo_dir / "transcripts.csv", dtype=str)
    assert list(labels.columns) == ["name", "discrete"] == list(tests.columns)
    assert list(texts.columns) == ["name", "chinese"]
    assert sorted(labels["name"]) == labeled
    assert set(tests["name"]) < set(unlabeled) and len(tests) == 6
    assert sorted(texts["name"]) == sorted(labeled + unlabeled)
    assert set(labels["discrete"]) == set(CLASSES)  # every class is labeled
    assert set(truth.loc[truth.split == "test", "name"]) == set(tests["name"])

    info = json.loads((demo_dir / "demo.json").read_text())
    assert info["seed"] == 7 and info["n_labeled"] == 12

    df = build_manifest(
        labeled_dir=demo_dir / "labeled",
        label_csv=demo_dir / "labels.csv",
        unlabeled_dir=demo_dir / "unlabeled",
        test_label_csv=demo_dir / "test_labels.csv",
        transcript_csv=demo_dir / "transcripts.csv",
        n_shards=3,
    )
    assert df["split"].value_counts().to_dict() == {"train": 12, "unlabeled": 6, "test": 6}
    merged = df.merge(truth, on="name", suffixes=("", "_truth"))
    labeled_rows = merged[merged.split != "unlabeled"]
    assert (labeled_rows["label"] == labeled_rows["discrete"]).all()


def test_transcripts_use_class_wording(demo_dir, truth):
    texts = pd.read_csv(demo_dir / "transcripts.csv", dtype=str).merge(truth, on="name")
    words = {
        "angry": "气|过分|原谅|怎么样",
        "happy": "开心|高兴|快乐|太好了",
        "sad": "难过|哭|伤心|回不来",
    }
    for label, pattern in words.items():
        rows = texts[texts.discrete == label]
        assert len(rows) and rows["chinese"].str.contains(pattern).all(), label


def test_clips_decode_with_size_duration_and_audio(demo_dir, truth):
    for row in truth.itertuples():
        path = _path(demo_dir, row)
        info = _probe(path)
        assert "h264" in info and "aac" in info and "16000 Hz" in info, info
        frames = _frames(path)
        assert 2 * media.FPS <= len(frames) <= 3 * media.FPS  # 2-3 s
        audio = _audio(path)
        assert abs(len(audio) / 16000 - len(frames) / media.FPS) < 0.1
        assert 0.05 < np.abs(audio).max() <= 1.0


def test_haar_finds_a_face_in_most_frames(demo_dir, truth):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hits = total = 0
    for row in truth.itertuples():
        frames = _frames(_path(demo_dir, row))[::3]
        found = [
            len(
                cascade.detectMultiScale(
                    cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(40, 40)
                )
            )
            > 0
            for f in frames
        ]
        assert np.mean(found) >= 0.5, row.name  # every clip: a face in most frames
        hits, total = hits + sum(found), total + len(found)
    assert hits / total >= 0.9


def test_audio_pitch_tells_the_class(demo_dir, truth):
    pitches = np.array([media.PITCH_HZ[c] for c in CLASSES])
    for row in truth.itertuples():
        audio = _audio(_path(demo_dir, row))
        spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
        band = (freqs > 60) & (freqs < 1000)
        f0 = freqs[band][np.argmax(spec[band])]
        assert abs(f0 / media.PITCH_HZ[row.discrete] - 1) < 0.07, (row.discrete, f0)
        assert CLASSES[int(np.argmin(np.abs(np.log(pitches / f0))))] == row.discrete


def test_face_colour_cast_follows_the_class(demo_dir, truth):
    # Mean colour of the central face region, red minus blue: angry/surprise red, sad blue.
    c = media.FRAME_SIZE // 2
    red_minus_blue = {}
    for row in truth.itertuples():
        centre = _frames(_path(demo_dir, row))[:, c - 20 : c + 20, c - 20 : c + 20].astype(float)
        red_minus_blue.setdefault(row.discrete, []).append(
            centre[..., 0].mean() - centre[..., 2].mean()
        )
    assert min(red_minus_blue["angry"]) > max(red_minus_blue["sad"])
    assert min(red_minus_blue["happy"]) > max(red_minus_blue["sad"])


def test_same_seed_gives_identical_files(demo_dir, tmp_path):
    make_demo(tmp_path, CFG, jobs=2)
    files = sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for f in files:
        assert (demo_dir / f).read_bytes() == (tmp_path / f).read_bytes(), f


def test_other_seed_gives_other_names():
    other = DemoConfig(seed=8, n_labeled=12, n_unlabeled=6, n_test=6)
    assert {c.name for c in plan(CFG)} != {c.name for c in plan(other)}


def test_head_motion_follows_the_class():
    # Track the face as the pipeline does (Haar box) over a rendered 3 s clip per class.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    face = media.face_pool()[0]
    tracks = {}
    for label in CLASSES:
        frames = media.render_frames(label, face, 36, np.random.default_rng(3))
        boxes = [
            cascade.detectMultiScale(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(60, 60))
            for f in frames
        ]
        tracks[label] = np.array([max(b, key=lambda r: r[2])[:3] for b in boxes if len(b)], float)
    x = {c: t[:, 0] + t[:, 2] / 2 for c, t in tracks.items()}
    y = {c: t[:, 1] + t[:, 2] / 2 for c, t in tracks.items()}
    w = {c: t[:, 2] for c, t in tracks.items()}
    assert np.ptp(x["angry"]) > np.ptp(x["neutral"]) + 6  # shaking
    assert np.ptp(y["happy"]) > np.ptp(y["neutral"]) + 3  # bouncing
    assert y["sad"][-3:].mean() > y["sad"][:3].mean() + 5  # drooping
    assert w["surprise"][-3:].mean() > w["surprise"][:2].mean() * 1.06  # towards the camera


def test_class_counts_mer2024_like_with_minimum():
    counts = class_counts(60, 5)
    assert sum(counts.values()) == 60 and min(counts.values()) >= 5
    assert counts["neutral"] > counts["sad"] > counts["surprise"]
    assert sum(class_counts(150, 1).values()) == 150
    assert min(class_counts(12, 5).values()) == 2


def test_rerun_with_fewer_clips_removes_stale_ones(tmp_path):
    small = DemoConfig(seed=1, n_labeled=12, n_unlabeled=2, n_test=0)
    make_demo(tmp_path, DemoConfig(seed=1, n_labeled=12, n_unlabeled=4, n_test=2))
    make_demo(tmp_path, small)
    assert len(list((tmp_path / "unlabeled").glob("*.mp4"))) == 2
    build_manifest(
        labeled_dir=tmp_path / "labeled",
        label_csv=tmp_path / "labels.csv",
        unlabeled_dir=tmp_path / "unlabeled",
        test_label_csv=tmp_path / "test_labels.csv",
        n_shards=1,
    )


def test_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "labeled").mkdir()
    (tmp_path / "labeled" / "mine.mp4").write_bytes(b"precious")
    with pytest.raises(InputError, match="not an earlier demo output"):
        make_demo(tmp_path, DemoConfig(n_labeled=12, n_unlabeled=0, n_test=0))
    assert (tmp_path / "labeled" / "mine.mp4").read_bytes() == b"precious"
