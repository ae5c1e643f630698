"""The two backends, one clip each: crops (RGB, S×S) and their source frame indices."""

import logging
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..common import ClipFailure
from . import Params
from .frames import frame_plan, iter_frames, probe
from .haar import HaarAligner
from .openface import openface_command

log = logging.getLogger(__name__)


def log_capped(path: Path, n_frames: int, p: Params) -> None:
    if n_frames > p.max_crops and (p.max_frames == 0 or p.max_frames > p.max_crops):
        log.warning(
            "%s: %d frames, keeping %d uniformly spread (faces.max_crops bounds memory per clip)",
            path, n_frames, p.max_crops,
        )  # fmt: skip


def opencv_clip(aligner: HaarAligner, path: Path, p: Params):
    """Frames are decoded and cropped one at a time: memory is the crops, not the video."""
    info = probe(path, p.timeout)
    log_capped(path, info.n_frames, p)
    crops, kept, n = [], [], 0
    s = p.crop_size
    for f, i in iter_frames(path, p.max_frames, p.max_side, p.timeout, p.max_crops, info):
        n += 1
        c = aligner.crop(f)
        if c is None and p.keep_failed:
            c = np.zeros((s, s, 3), dtype=np.uint8)
        if c is not None:
            crops.append(c)
            kept.append(i)
    if not crops:
        raise ClipFailure("no_face", f"no face in {n} decoded frame(s)")
    return np.stack(crops), np.asarray(kept, dtype=np.int64)


def openface_clip(exe: Path, path: Path, p: Params):
    """Run FeatureExtraction on one video; aligned crops (RGB) in frame order."""
    if not path.is_file():
        raise ClipFailure("missing_file", str(path))
    with tempfile.TemporaryDirectory(prefix="mersemi-openface-") as tmp:
        tmp = Path(tmp)
        # An ASCII name: OpenFace names its outputs after the input and mishandles some names.
        video = tmp / f"clip{path.suffix.lower()}"
        video.symlink_to(path.resolve())
        out = tmp / "out"
        cmd = openface_command(exe, video, out, p)
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=p.timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise ClipFailure("openface_error", f"timed out after {p.timeout:.0f} s") from None
        csv = out / "clip.csv"
        if proc.returncode != 0 or not csv.is_file():
            msg = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
            raise ClipFailure(
                "openface_error", f"exit {proc.returncode}: {msg[-1] if msg else 'no output'}"
            )
        table = pd.read_csv(csv, skipinitialspace=True)
        table.columns = [c.strip() for c in table.columns]
        rows = table if p.keep_failed else table[table.get("success", 1) == 1]
        ok = rows["frame"].astype(int).to_numpy()
        log_capped(path, len(ok), p)
        idx, _ = frame_plan(len(ok), p.max_frames, p.max_crops)
        aligned = out / "clip_aligned"
        crops, kept = [], []
        s = p.crop_size
        for frame in ok if idx is None else ok[idx]:
            # OpenFace names aligned frames frame_det_<face>_<frame, 1-based, 6 digits>.
            f = aligned / f"frame_det_00_{frame:06d}.png"
            img = cv2.imread(str(f), cv2.IMREAD_COLOR) if f.is_file() else None
            if img is None:
                if not p.keep_failed:
                    continue
                img = np.zeros((s, s, 3), dtype=np.uint8)  # what OpenFace writes for it
            if img.shape[:2] != (s, s):
                img = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)
            crops.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            kept.append(int(frame) - 1)
    if not crops:
        raise ClipFailure("no_face", "OpenFace aligned no face")
    return np.stack(crops), np.asarray(kept, dtype=np.int64)
