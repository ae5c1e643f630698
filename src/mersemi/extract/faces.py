"""Stage `faces`: video → aligned face crops, one HDF5 file per shard.

Backends:
  opencv    (default, offline) ffmpeg frames → OpenCV Haar face detection, the largest face per
            frame, rotation so the eyes are level when both eyes are found, square crop with a
            margin, resized to `size`×`size` (one affine warp per face).
  openface  OpenFace 2.x `FeatureExtraction -simalign` (similarity-aligned faces), aligned
            frames read back in frame order.

Recipes (docs/extraction.md):
  mertools  (default) MERTools' frame set: a crop for every frame, all-zero where no face was
            found (OpenFace: tracking failed), so a clip with a video is always valid; `size`
            112. openface: OpenFace's default aligned faces (112 px, masked, every frame, no
            -nomask / -nobadaligned) = MERTools' `extract_openface.py` crops, pixel for pixel.
            opencv cannot reproduce OpenFace's alignment and mask (logged as a departure); it
            keeps MERTools' frame set and size.
  mersemi   only frames with a face (OpenFace: `success == 1`, `-nomask -nobadaligned`);
            `no_face` when there is none; `size` 224.

Crops file (`--out`, e.g. faces/shard-0003.h5), written atomically:
  names     utf-8, N clips in shard order
  valid     bool, N (False: no face in any frame, or the video could not be decoded)
  reason    utf-8, N ('' when valid)
  offsets   int64, N+1: the crops of clip i are crops[offsets[i]:offsets[i+1]]
  crops     uint8, T×S×S×3 RGB (T = all kept frames of the shard)
  frame     int64, T: source frame index of each crop
  attrs     backend, size, params (JSON), n_clips, n_crops
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError
from ..provenance import provenance
from .common import (
    ClipFailure,
    Outcome,
    StageParams,
    check_recipe,
    departures,
    meta_params,
    prefetch,
    progress,
    read_shard,
    write_reasons,
)
from .frames import frame_plan, iter_frames, probe

log = logging.getLogger(__name__)

HELP = "video -> aligned face crops (OpenCV Haar or OpenFace), HDF5 per shard"


# MERTools' values of the keys a config may set (others are a logged departure)
MERTOOLS = {"backend": "openface", "size": 112, "max_frames": 0}
SIZE = {"mertools": 112, "mersemi": 224}  # default crop side per recipe


@dataclass
class FacesParams(StageParams):
    recipe: str = "mertools"  # mertools | mersemi (docs/extraction.md)
    backend: str = "opencv"  # opencv | openface
    max_frames: int = 0  # 0: every frame; N: at most N frames, uniformly spread
    # Memory bound per clip: a clip with more frames is sampled uniformly down to this many
    # (logged). Crops held per clip ≤ max_crops·size²·3 bytes (2000 at 224 px: 301 MB).
    max_crops: int = 2000
    size: int | None = None  # side of the square crops (None: 112 mertools, 224 mersemi)
    max_side: int = 0  # opencv: downscale frames so the longer side ≤ this before detection
    margin: float = 0.2  # opencv: crop side = face side × (1 + 2·margin)
    min_face: int = 24  # opencv: smallest face side in pixels
    scale_factor: float = 1.1  # opencv: Haar detectMultiScale scaleFactor
    min_neighbors: int = 5  # opencv: Haar detectMultiScale minNeighbors
    align: bool = True  # opencv: rotate so the eyes are level when both are found
    max_angle: float = 30.0  # opencv: ignore eye pairs tilted more than this (degrees)
    openface_bin: str | None = None  # openface: path of the FeatureExtraction binary
    # openface: landmark model (-mloc): a path, or relative to the binary's directory. None:
    # OpenFace's default (CE-CLM, needs the cen_patches_*.dat of download_models.sh); a build
    # with only the models in OpenFace's repository needs model/main_clnf_general.txt.
    openface_model: str | None = None
    # openface: -simscale. None: OpenFace sets it to 0.7·size/112, the face fills ~90 % of the
    # crop at any size; 0.7 at size 224 shrinks the face to ~45 % of the width.
    openface_scale: float | None = None
    timeout: float = 600.0  # seconds per clip for ffmpeg / OpenFace

    def check(self) -> None:
        check_recipe("faces", self.recipe)
        if self.backend not in ("opencv", "openface"):
            raise InputError(f"faces: backend must be opencv or openface, got {self.backend!r}")
        if self.size is not None and self.size < 8:
            raise InputError(f"faces: size must be at least 8, got {self.size}")
        if self.max_frames < 0:
            raise InputError(f"faces: max_frames must be ≥ 0, got {self.max_frames}")
        if self.max_crops < 1:
            raise InputError(f"faces: max_crops must be ≥ 1, got {self.max_crops}")
        if not 0 <= self.margin <= 2:
            raise InputError(f"faces: margin must be in [0, 2], got {self.margin}")
        if self.openface_scale is not None and self.openface_scale <= 0:
            raise InputError(f"faces: openface_scale must be > 0, got {self.openface_scale}")

    @property
    def crop_size(self) -> int:
        return self.size if self.size is not None else SIZE[self.recipe]

    @property
    def keep_failed(self) -> bool:
        """MERTools' frame set: frames without a face stay in, as all-zero crops."""
        return self.recipe == "mertools"


Params = FacesParams


# --------------------------------------------------------------------------- opencv backend


class HaarAligner:
    """Largest-face detection and eye-level alignment with OpenCV's Haar cascades.

    Thread-safe: each thread gets its own CascadeClassifier pair.
    """

    def __init__(self, p: FacesParams):
        import cv2

        self.p = p
        root = Path(cv2.data.haarcascades)
        self._files = (
            root / "haarcascade_frontalface_default.xml",
            root / "haarcascade_eye.xml",
        )
        for f in self._files:
            if not f.is_file():
                raise InputError(
                    f"faces: OpenCV Haar cascade {f} not found (install opencv-python-headless<5)"
                )
        self._local = threading.local()
        self._cascades()  # fail now, in the main thread, if they do not load

    def _cascades(self):
        import cv2

        if not hasattr(self._local, "face"):
            face, eye = (cv2.CascadeClassifier(str(f)) for f in self._files)
            if face.empty() or eye.empty():
                raise InputError(f"faces: cannot load Haar cascades {self._files}")
            self._local.face, self._local.eye = face, eye
        return self._local.face, self._local.eye

    def detect(self, gray: np.ndarray) -> tuple[int, int, int, int] | None:
        face, _ = self._cascades()
        p = self.p
        boxes = face.detectMultiScale(
            gray, scaleFactor=p.scale_factor, minNeighbors=p.min_neighbors,
            minSize=(p.min_face, p.min_face),
        )  # fmt: skip
        if len(boxes) == 0:
            return None
        x, y, w, h = max((tuple(int(v) for v in b) for b in boxes), key=lambda b: b[2] * b[3])
        return x, y, w, h

    def eyes(self, gray: np.ndarray, box) -> tuple[np.ndarray, np.ndarray] | None:
        """Centres (x, y) of the left and right eye in image coordinates, or None."""
        _, eye = self._cascades()
        x, y, w, h = box
        roi = gray[y : y + int(h * 0.6), x : x + w]
        found = eye.detectMultiScale(
            roi, scaleFactor=1.1, minNeighbors=5, minSize=(w // 10, w // 10)
        )
        left = [e for e in found if e[0] + e[2] / 2 < w / 2]
        right = [e for e in found if e[0] + e[2] / 2 >= w / 2]
        if not left or not right:
            return None
        le = max(left, key=lambda e: e[2] * e[3])
        re_ = max(right, key=lambda e: e[2] * e[3])
        c = [np.array([x + e[0] + e[2] / 2, y + e[1] + e[3] / 2]) for e in (le, re_)]
        return c[0], c[1]

    def crop(self, frame: np.ndarray) -> np.ndarray | None:
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        box = self.detect(gray)
        if box is None:
            return None
        angle = 0.0
        if self.p.align:
            eyes = self.eyes(gray, box)
            if eyes is not None:
                a = eye_angle(*eyes)
                if abs(a) <= self.p.max_angle:
                    angle = a
        return align_crop(frame, box, angle, self.p.margin, self.p.crop_size)


def eye_angle(left: np.ndarray, right: np.ndarray) -> float:
    """Tilt of the eye line in degrees (image coordinates, y down)."""
    d = np.asarray(right, float) - np.asarray(left, float)
    return math.degrees(math.atan2(d[1], d[0]))


def crop_matrix(box, angle: float, margin: float, size: int) -> np.ndarray:
    """2×3 affine map from frame to crop: rotate by `angle` about the face centre (making a
    line tilted by `angle` horizontal), scale the margin-padded face square to size×size."""
    import cv2

    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(w, h) * (1.0 + 2.0 * margin)
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    return m


def align_crop(frame: np.ndarray, box, angle: float, margin: float, size: int) -> np.ndarray:
    import cv2

    m = crop_matrix(box, angle, margin, size)
    return cv2.warpAffine(
        frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def log_capped(path: Path, n_frames: int, p: FacesParams) -> None:
    if n_frames > p.max_crops and (p.max_frames == 0 or p.max_frames > p.max_crops):
        log.warning(
            "%s: %d frames, keeping %d uniformly spread (faces.max_crops bounds memory per clip)",
            path, n_frames, p.max_crops,
        )  # fmt: skip


def opencv_clip(aligner: HaarAligner, path: Path, p: FacesParams):
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


# --------------------------------------------------------------------------- openface backend


def openface_binary(p: FacesParams) -> Path:
    if not p.openface_bin:
        raise InputError(
            "faces: backend 'openface' needs params key 'openface_bin' (path of OpenFace 2.x "
            "FeatureExtraction); or use backend 'opencv'"
        )
    exe = Path(p.openface_bin).expanduser()
    if not exe.is_file():
        found = shutil.which(p.openface_bin)
        if not found:
            raise InputError(f"faces: openface_bin={p.openface_bin!r}: no such file")
        exe = Path(found)
    return exe


OPENFACE_DEFAULT_MODEL = "model/main_ceclm_general.txt"  # what FeatureExtraction loads w/o -mloc
# lines `<Key> <relative path>` in OpenFace's model files that name another file it loads
_OPENFACE_REFS = {"LandmarkDetector", "LandmarkDetector_part", "FaceDetConversion",
                  "DetectionValidator", "PDM", "Triangulations", "PatchesIntensity",
                  "PatchesCCNF", "PatchesCEN", "PatchesSVR", "EarlyTermination"}  # fmt: skip


def openface_missing_files(main: Path) -> list[Path]:
    """Files the landmark model `main` needs that are absent (the model files name each other
    by paths relative to their own directory; the patch experts are the large ones)."""
    missing, todo, seen = [], [main], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if not f.is_file():
            missing.append(f)
        elif f.suffix == ".txt" and f.stat().st_size < 100_000:  # an index, not patch data
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] in _OPENFACE_REFS:
                    todo.append(f.parent / parts[1])
    return missing


def openface_model_problem(exe: Path, p: FacesParams) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) if FeatureExtraction would fail to load its landmark
    model, else None."""
    main = openface_model_path(exe, p) or exe.parent / OPENFACE_DEFAULT_MODEL
    missing = openface_missing_files(main)
    if not missing:
        return None
    rel = [str(m.relative_to(main.parent)) if m.is_relative_to(main.parent) else str(m)
           for m in missing]  # fmt: skip
    more = f" (+{len(rel) - 2} more)" if len(rel) > 2 else ""
    detail = f"landmark model {main}: missing {', '.join(rel[:2])}{more}"
    if p.openface_model:
        fix = "set openface_model to an existing model file, e.g. model/main_clnf_general.txt"
    else:
        fix = ("run OpenFace's download_models.sh (CE-CLM), or set openface_model: "
               "model/main_clnf_general.txt (CLNF, in OpenFace's repository)")  # fmt: skip
    return detail, fix


def openface_model_path(exe: Path, p: FacesParams) -> Path | None:
    """The landmark model's absolute path, searched as OpenFace does: as given (relative to the
    working directory), then in the binary's directory (FeatureExtraction itself runs in a
    temporary directory, so it gets the absolute path)."""
    if not p.openface_model:
        return None
    m = Path(p.openface_model).expanduser()
    if m.is_absolute() or m.exists():
        return m.absolute()
    return exe.parent / m


def openface_command(exe: Path, video: Path, out: Path, p: FacesParams) -> list[str]:
    """mertools: OpenFace's default aligned faces (masked, a crop for every frame; MERTools
    passes no flags at all, which writes these and every other output); mersemi: unmasked
    crops of the frames where tracking succeeded."""
    cmd = [str(exe), "-f", str(video), "-out_dir", str(out), "-simalign",
           "-simsize", str(p.crop_size)]  # fmt: skip
    if p.openface_scale is not None:
        cmd += ["-simscale", str(p.openface_scale)]
    model = openface_model_path(exe, p)
    if model is not None:
        cmd += ["-mloc", str(model)]
    cmd += ["-format_aligned", "png"]
    if p.recipe == "mersemi":
        # -nobadaligned: no crop for frames where tracking failed (the CSV says which)
        cmd += ["-nomask", "-nobadaligned"]
    return cmd + ["-q"]


def openface_clip(exe: Path, path: Path, p: FacesParams):
    """Run FeatureExtraction on one video; aligned crops (RGB) in frame order."""
    import cv2

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
        import pandas as pd

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


# --------------------------------------------------------------------------- run


def run(args, p: FacesParams) -> None:
    extract_faces(args.shard, args.out, p)


def extract_faces(shard, out, p: FacesParams) -> Outcome:
    import h5py

    clips = read_shard(shard)
    gone = departures("faces", p, MERTOOLS)
    if p.backend == "opencv":
        aligner = HaarAligner(p)

        def work(c):
            return opencv_clip(aligner, c[1].path, p)
    else:
        exe = openface_binary(p)
        problem = openface_model_problem(exe, p)
        if problem:  # every clip would fail the same way: stop before the shard
            raise InputError(f"faces: {problem[0]}; {problem[1]}")

        def work(c):
            return openface_clip(exe, c[1].path, p)

    outcome = Outcome([c.name for c in clips])
    s = p.crop_size
    out = Path(out)
    str_t = h5py.string_dtype("utf-8")
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        crops = h5.create_dataset(
            "crops", shape=(0, s, s, 3), maxshape=(None, s, s, 3), dtype=np.uint8,
            chunks=(1, s, s, 3),
        )  # fmt: skip
        frame_ds = h5.create_dataset("frame", shape=(0,), maxshape=(None,), dtype=np.int64)
        offsets = np.zeros(len(clips) + 1, dtype=np.int64)
        total = 0
        results = prefetch(work, list(enumerate(clips)), p.workers, p.prefetch)
        for (i, _clip), res, err in progress(results, total=len(clips), desc="faces"):
            if err is not None:
                outcome.fail_with(i, err)
            else:
                c, kept = res
                crops.resize(total + len(c), axis=0)
                crops[total : total + len(c)] = c
                frame_ds.resize(total + len(c), axis=0)
                frame_ds[total : total + len(c)] = kept
                total += len(c)
            offsets[i + 1] = total
        h5.create_dataset("offsets", data=offsets)
        h5.create_dataset("names", data=outcome.names, dtype=str_t)
        h5.create_dataset("valid", data=outcome.valid)
        h5.create_dataset("reason", data=outcome.reasons, dtype=str_t)
        h5.attrs["backend"] = p.backend
        h5.attrs["size"] = s
        h5.attrs["params"] = json.dumps(
            {**meta_params(p), "size": s, "keep_failed": p.keep_failed, "departures": gone},
            sort_keys=True,
        )
        h5.attrs["provenance"] = json.dumps(provenance(meta_params(p)), sort_keys=True)
        h5.attrs["n_clips"] = len(clips)
        h5.attrs["n_crops"] = total
        h5.close()
        write_reasons(outcome, out)
    outcome.log_summary("faces", out)
    return outcome


# --------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class CropFile:
    names: list[str]
    valid: np.ndarray
    reasons: list[str]
    offsets: np.ndarray
    size: int
    params: dict
    path: Path


def open_crops(path) -> CropFile:
    """Read the index of a crops file (not the crops); errors name the file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"crops file {path}: not found (run `mersemi extract faces` first)")
    try:
        with h5py.File(path, "r") as h5:
            for k in ("names", "valid", "reason", "offsets", "crops"):
                if k not in h5:
                    raise InputError(f"crops file {path}: missing dataset {k!r}")
            return CropFile(
                names=list(h5["names"].asstr()[:]),
                valid=h5["valid"][:].astype(bool),
                reasons=list(h5["reason"].asstr()[:]),
                offsets=h5["offsets"][:],
                size=int(h5.attrs["size"]),
                params=json.loads(h5.attrs["params"]),
                path=path,
            )
    except OSError as e:
        raise InputError(f"crops file {path}: not a readable HDF5 file ({e})") from None


# --------------------------------------------------------------------------- model check


def _params(params) -> FacesParams:
    from ..params import parse_params

    return params if isinstance(params, FacesParams) else parse_params(FacesParams, params)


def check_model(params) -> list:
    """ffmpeg, and the backend's detector: OpenCV's Haar cascades, or the OpenFace binary, its
    landmark model files, and one run of it on a 3-frame video (shared libraries, model load)."""
    from ..ffmpeg_bin import ffmpeg_exe
    from .modelcheck import bad, ok, package_check

    try:
        p = _params(params)
    except InputError as e:
        return [bad("faces", "params", str(e), "fix the faces section of the config")]
    checks = []
    try:
        ver = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, timeout=60)
        line = ver.stdout.decode(errors="replace").split("\n", 1)[0]
        checks.append(ok("faces", "ffmpeg", f"{ffmpeg_exe()}: {line[:60]}"))
    except (OSError, subprocess.SubprocessError) as e:
        checks.append(bad("faces", "ffmpeg", str(e), "install ffmpeg or set MERSEMI_FFMPEG"))
        return checks
    if p.backend == "opencv":
        checks.append(package_check("faces", "cv2", "opencv-python-headless"))
        if checks[-1].ok:
            try:
                HaarAligner(p)
                checks.append(ok("faces", "haar cascades", "face and eye cascades load"))
            except InputError as e:
                checks.append(bad("faces", "haar cascades", str(e), "pip install opencv-python"))
        return checks
    try:
        exe = openface_binary(p)
    except InputError as e:
        return checks + [bad("faces", "openface_bin", str(e), OPENFACE_FIX)]
    checks.append(ok("faces", "openface_bin", str(exe)))
    problem = openface_model_problem(exe, p)
    model = openface_model_path(exe, p) or exe.parent / OPENFACE_DEFAULT_MODEL
    if problem:
        return checks + [bad("faces", "openface_model", *problem)]
    checks.append(ok("faces", "openface_model", str(model)))
    checks.append(_openface_smoke(exe, p))
    return checks


OPENFACE_FIX = "build OpenFace 2.2 (README: Real data, OpenFace) and set openface_bin/_model"


def _openface_smoke(exe: Path, p: FacesParams):
    """FeatureExtraction on 3 grey frames: exit 0 and a CSV (no face is expected)."""
    from ..ffmpeg_bin import ffmpeg_exe
    from .modelcheck import bad, ok

    with tempfile.TemporaryDirectory(prefix="mersemi-ofcheck-") as tmp:
        video, out = Path(tmp) / "check.mp4", Path(tmp) / "out"
        subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
             "-i", "color=c=gray:s=96x96:r=10:d=0.3", "-pix_fmt", "yuv420p", str(video)],
            check=True, timeout=60,
        )  # fmt: skip
        try:
            proc = subprocess.run(
                openface_command(exe, video, out, p), capture_output=True, timeout=120, cwd=tmp
            )
        except (OSError, subprocess.SubprocessError) as e:
            return bad("faces", "openface run", f"{exe}: {e}", OPENFACE_FIX)
        if proc.returncode != 0 or not (out / "check.csv").is_file():
            msg = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
            last = msg[-1] if msg else "no output"
            return bad("faces", "openface run", f"exit {proc.returncode}: {last}", OPENFACE_FIX)
    return ok("faces", "openface run", "FeatureExtraction ran on a 3-frame video")
