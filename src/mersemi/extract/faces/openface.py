"""The OpenFace 2.x `FeatureExtraction` binary: where it is, the landmark model files it
loads, and its command line (no OpenCV needed: check-models uses these too)."""

import shutil
from pathlib import Path

from ...errors import InputError
from . import Params


def openface_binary(p: Params) -> Path:
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


def openface_model_problem(exe: Path, p: Params) -> tuple[str, str] | None:
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


def openface_model_path(exe: Path, p: Params) -> Path | None:
    """The landmark model's absolute path, searched as OpenFace does: as given (relative to the
    working directory), then in the binary's directory (FeatureExtraction itself runs in a
    temporary directory, so it gets the absolute path)."""
    if not p.openface_model:
        return None
    m = Path(p.openface_model).expanduser()
    if m.is_absolute() or m.exists():
        return m.absolute()
    return exe.parent / m


def openface_command(exe: Path, video: Path, out: Path, p: Params) -> list[str]:
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
