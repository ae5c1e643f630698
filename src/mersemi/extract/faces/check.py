"""`check-models` for the faces stage: ffmpeg, and the backend's detector: OpenCV's Haar
cascades, or the OpenFace binary, its landmark model files, and one run of it on a 3-frame
video (shared libraries, model load)."""

import subprocess
import tempfile
from pathlib import Path

from ...errors import InputError
from ...ffmpeg_bin import ffmpeg_exe
from ...params import parse_params
from ..modelcheck import bad, ok, package_check
from . import Params
from .openface import (
    OPENFACE_DEFAULT_MODEL,
    openface_binary,
    openface_command,
    openface_model_path,
    openface_model_problem,
)


def _params(params) -> Params:
    return params if isinstance(params, Params) else parse_params(Params, params)


def check_model(params) -> list:
    """The checks of the module docstring, one line each."""
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
            from .haar import HaarAligner  # cv2: only once it is known to be there

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


def _openface_smoke(exe: Path, p: Params):
    """FeatureExtraction on 3 grey frames: exit 0 and a CSV (no face is expected)."""
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
