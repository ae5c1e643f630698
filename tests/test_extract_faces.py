import json
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.common import ClipFailure, reasons_path
from mersemi.extract.crops import open_crops
from mersemi.extract.faces import Params as FacesParams
from mersemi.extract.faces.frames import decode_frames, probe, sample_indices, select_expr
from mersemi.extract.faces.geometry import crop_matrix, eye_angle
from mersemi.ffmpeg_bin import ffmpeg_exe
from mersemi.fixtures.media import encode, face_frames, make_media, write_shard
from mersemi.params import check_params

SIZE = 64


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    clips = make_media(root)
    return root, clips, write_shard(root / "shard.csv", clips)


@pytest.fixture(scope="module")
def crops(media):
    root, _, shard = media
    out = root / "faces" / "shard-0000.h5"
    outcome = run_stage(
        "faces",
        {
            "shard": shard,
            "out": out,
            "params": FacesParams(max_frames=5, size=SIZE, recipe="mersemi"),
        },
    )
    return out, outcome


def test_opencv_under_mertools_keeps_every_frame(media, tmp_path):
    """recipe mertools: MERTools' frame set with the OpenCV backend: a crop for every sampled
    frame, all-zero where no face was found, so the faceless clip is valid (MERTools gives it a
    feature: CLIP of black crops); 112 px by default. The departures are in the attrs."""
    _, clips, _ = media
    shard = write_shard(tmp_path / "s.csv", {"face": clips["face"], "noface": clips["noface"]})
    out = tmp_path / "mt.h5"
    run_stage("faces", {"shard": shard, "out": out, "params": FacesParams(max_frames=5)})
    cf = open_crops(out)
    assert cf.valid.tolist() == [True, True] and cf.size == 112
    with h5py.File(out, "r") as h5:
        c, fr = h5["crops"][:], h5["frame"][:]
        params = json.loads(h5.attrs["params"])
    assert c.shape == (10, 112, 112, 3) and len(set(fr[5:])) == 5  # 5 of noface's 8 frames
    assert c[:5].reshape(5, -1).any(1).all() and not c[5:].any()
    assert params["keep_failed"] and params["departures"] == {"backend": "opencv", "max_frames": 5}


def test_decode_and_sample(media):
    _, clips, _ = media
    info = probe(clips["face"])
    assert info.has_video and info.has_audio and info.n_frames == 12
    assert not probe(clips["silent"]).has_audio
    frames, src = decode_frames(clips["face"], max_frames=4, max_side=160)
    assert frames.shape == (4, 120, 160, 3) and list(src) == [0, 3, 6, 9]
    assert sample_indices(10, 0) is None and sample_indices(3, 5) is None


def test_faces_found_aligned_and_bad_clips_isolated(crops):
    out, outcome = crops
    cf = open_crops(out)
    assert cf.names == ["face", "面孔_中文", "face2", "silent", "noface", "corrupt", "missing"]
    valid = dict(zip(cf.names, cf.valid, strict=True))
    reason = dict(zip(cf.names, cf.reasons, strict=True))
    assert all(valid[n] for n in ("face", "面孔_中文", "face2", "silent"))
    assert reason["noface"] == "no_face"
    assert reason["corrupt"] == "decode_error"
    assert reason["missing"] == "missing_file"
    assert outcome.counts() == {"no_face": 1, "decode_error": 1, "missing_file": 1}
    with h5py.File(out, "r") as h5:
        c = h5["crops"]
        assert c.shape[1:] == (SIZE, SIZE, 3) and c.dtype == np.uint8
        face = c[cf.offsets[0] : cf.offsets[1]]
        frames = h5["frame"][cf.offsets[0] : cf.offsets[1]]
    assert 4 <= len(face) <= 5 and np.all(np.diff(frames) > 0)
    assert face.std() > 10  # a face, not a flat background
    # the face moves over the frames but the crops follow it: consecutive crops stay similar
    assert np.abs(face[0].astype(int) - face[-1].astype(int)).mean() < 40
    assert reasons_path(out).is_file()


def test_crop_matrix_levels_the_eyes():
    left, right = np.array([100.0, 120.0]), np.array([150.0, 135.0])
    a = eye_angle(left, right)
    m = crop_matrix((80, 90, 100, 100), a, 0.2, 112)
    (lx, ly), (rx, ry) = (m @ np.r_[p, 1.0] for p in (left, right))
    assert abs(ly - ry) < 1e-6 and rx > lx
    # centre of the face box lands at the centre of the crop
    np.testing.assert_allclose(m @ np.r_[130.0, 140.0, 1.0], [56, 56], atol=1e-6)


def test_openface_missing_binary_is_a_clear_error(media, tmp_path):
    _, _, shard = media
    with pytest.raises(InputError, match="openface_bin"):
        run_stage(
            "faces",
            {"shard": shard, "out": tmp_path / "o.h5", "params": FacesParams(backend="openface")},
        )
    with pytest.raises(InputError, match="no such file"):
        run_stage(
            "faces",
            {
                "shard": shard,
                "out": tmp_path / "o.h5",
                "params": FacesParams(backend="openface", openface_bin="/no/FE"),
            },
        )
    assert not (tmp_path / "o.h5").exists()


FAKE_OPENFACE = """#!{python}
# Mimics OpenFace 2.x FeatureExtraction -simalign: frame 2 of 3 unsuccessful.
import sys, pathlib, numpy as np, cv2
a = sys.argv
video = pathlib.Path(a[a.index("-f") + 1]); out = pathlib.Path(a[a.index("-out_dir") + 1])
size = int(a[a.index("-simsize") + 1])
assert "-simscale" not in a and a[a.index("-mloc") + 1].endswith("model/main.txt")
if "bad" in video.resolve().name:
    sys.exit("Could not open video")
aligned = out / (video.stem + "_aligned"); aligned.mkdir(parents=True)
rows = ["frame, face_id, timestamp, confidence, success"]
for f in (1, 2, 3):
    rows.append(f"{{f}}, 0, {{f / 10}}, 0.9, {{0 if f == 2 else 1}}")
    img = np.full((size, size, 3), f * 40, np.uint8)  # BGR
    img[..., 0] = 7
    cv2.imwrite(str(aligned / f"frame_det_00_{{f:06d}}.png"), img)
(out / (video.stem + ".csv")).write_text("\\n".join(rows) + "\\n")
"""


def test_openface_backend_reads_aligned_frames_in_order(media, tmp_path):
    _, clips, _ = media
    exe = tmp_path / "FeatureExtraction"
    exe.write_text(FAKE_OPENFACE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"x")
    shard = write_shard(tmp_path / "s.csv", {"面孔_中文": clips["面孔_中文"], "bad": bad})
    out = tmp_path / "of.h5"
    model = tmp_path / "model" / "main.txt"  # a landmark model naming no other file
    model.parent.mkdir()
    model.write_text("")
    p = FacesParams(
        backend="openface", openface_bin=str(exe), openface_model="model/main.txt", size=32,
        workers=0, recipe="mersemi",
    )  # fmt: skip
    run_stage("faces", {"shard": shard, "out": out, "params": p})
    cf = open_crops(out)
    assert list(cf.valid) == [True, False] and cf.reasons[1] == "openface_error"
    with h5py.File(out, "r") as h5:
        c, fr = h5["crops"][:], h5["frame"][:]
    assert c.shape == (2, 32, 32, 3) and list(fr) == [0, 2]  # frame 2 (index 1) dropped
    assert c[0, 0, 0].tolist() == [40, 40, 7] and c[1, 0, 0].tolist() == [120, 120, 7]  # RGB


def test_only_the_first_video_stream_is_decoded(media, tmp_path):
    """A file with two video streams (here a 64×48 one after the face video) decodes as its
    first stream alone, not as the two interleaved in one pipe."""
    _, clips, _ = media
    small = encode(tmp_path / "small.mp4", face_frames(8)[:, ::5, ::5], audio=False)
    both = tmp_path / "two_streams.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clips["face"]),
         "-i", str(small), "-map", "0:v", "-map", "1:v", "-c", "copy", str(both)],
        check=True,
    )  # fmt: skip
    frames, src = decode_frames(both)
    alone, _ = decode_frames(clips["face"])
    assert frames.shape == alone.shape and list(src) == list(range(len(alone)))
    np.testing.assert_array_equal(frames, alone)


def test_crops_per_clip_are_capped_uniformly(media, tmp_path, caplog):
    """max_frames 0 (every frame) with max_crops 3: a 12-frame clip keeps 3 frames spread over
    the whole clip, stays valid, and the cap is logged with the clip's path."""
    _, clips, _ = media
    shard = write_shard(tmp_path / "shard.csv", {"face": clips["face"]})
    out = tmp_path / "faces.h5"
    with caplog.at_level("WARNING"):
        run_stage(
            "faces",
            {
                "shard": shard,
                "out": out,
                "params": FacesParams(max_frames=0, max_crops=3, size=SIZE, recipe="mersemi"),
            },
        )
    cf = open_crops(out)
    with h5py.File(out, "r") as h5:
        kept = list(h5["frame"][:])
    assert cf.valid[0] and 2 <= len(kept) <= 3 and set(kept) <= {0, 4, 8} and kept[-1] == 8
    assert "keeping 3 uniformly spread" in caplog.text and str(clips["face"]) in caplog.text
    with pytest.raises(InputError, match="max_crops"):
        check_params(FacesParams(max_crops=0), "faces")


def test_many_sampled_frames_decode_and_match_their_indices(media, tmp_path):
    """Thousands of sampled frames (a long clip under max_crops) stay one small ffmpeg
    expression, and the frames decoded are the frames the indices name."""
    assert len(sample_indices(15000, 2000)) == 2000
    assert select_expr(15000, 2000) == "gt(floor(n*2000/15000),floor((n-1)*2000/15000))"
    _, clips, _ = media
    every, _ = decode_frames(clips["face"])
    some, src = decode_frames(clips["face"], max_frames=5)
    assert list(src) == list(sample_indices(12, 5)) and len(src) == 5
    np.testing.assert_array_equal(some, every[src])


def test_a_stalled_decoder_is_killed_and_named(tmp_path, monkeypatch):
    """An ffmpeg that stops giving frames is killed after `timeout` seconds without a frame,
    and the clip fails as decode_error (not a hang, not a silently short clip)."""
    from mersemi.extract.faces import frames as fr

    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(fr, "ffmpeg_exe", lambda: str(fake))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    info = fr.ProbeInfo(has_video=True, has_audio=False, n_frames=10, duration=None)
    with pytest.raises(ClipFailure, match="no frame for 1 s") as e:
        list(fr.iter_frames(video, timeout=1, info=info))
    assert e.value.reason == "decode_error"
