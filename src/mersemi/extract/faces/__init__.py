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

Crops file (`--out`, e.g. faces/shard-0003.h5): the format is `extract/crops.py`'s.
"""

from dataclasses import dataclass
from typing import Literal

from ...params import AT_LEAST_1, NONNEG, POSITIVE, Range, option
from ..common import Recipe, StageParams, recipe_option

STAGE = "faces"
HELP = "video -> aligned face crops (OpenCV Haar or OpenFace), HDF5 per shard"

# MERTools' values of the keys a config may set (others are a logged departure)
MERTOOLS = {"backend": "openface", "size": 112, "max_frames": 0}
SIZE = {"mertools": 112, "mersemi": 224}  # default crop side per recipe


@dataclass
class Params(StageParams):
    recipe: Recipe = recipe_option(
        help=(
            "`mertools`: a crop for every frame (zero where no face), OpenFace's masked crops; "
            '`mersemi`: frames with a face, unmasked ("Recipes")'
        )
    )
    backend: Literal["opencv", "openface"] = option(
        "opencv", help="`opencv` (Haar, offline) or `openface` (OpenFace 2.x)"
    )
    max_frames: int = option(
        0,
        range=NONNEG,
        help=(
            "0: every frame; N: at most N frames spread uniformly (ffmpeg `select`: frame n is "
            "kept where floor(n·N/frames) steps up)"
        ),
    )
    max_crops: int = option(
        2000,
        range=AT_LEAST_1,
        help=(
            "memory bound per clip: a clip with more frames than this (after `max_frames`) is "
            "sampled uniformly down to it and a warning names it. Frames are decoded and cropped "
            "one at a time, so a clip holds at most `max_crops`·size²·3 bytes of crops (2000 at "
            "224 px: 301 MB) plus one frame. Only the first video stream (`0:v:0`) is read"
        ),
    )
    size: int | None = option(
        None,
        range=Range(8),
        help=(
            "side of the square RGB crops (OpenFace: `-simsize`); `null`: 112 (`mertools`), 224 "
            "(`mersemi`)"
        ),
    )
    max_side: int = option(
        0,
        range=NONNEG,
        help="opencv: downscale frames so the longer side is at most this (0: never)",
    )
    margin: float = option(
        0.2, range=Range(0, 2), help="opencv: crop side = face side × (1 + 2·margin)"
    )
    min_face: int = option(24, range=AT_LEAST_1, help="opencv: smallest face side, pixels")
    scale_factor: float = option(
        1.1, range=Range(1, lo_open=True), help="opencv: Haar `detectMultiScale` scaleFactor"
    )
    min_neighbors: int = option(
        5, range=NONNEG, help="opencv: Haar `detectMultiScale` minNeighbors"
    )
    align: bool = option(True, help="opencv: rotate so the eyes are level when both eyes are found")
    max_angle: float = option(
        30.0,
        range=Range(0, 180),
        help="opencv: eye pairs tilted more than this are ignored (no rotation)",
    )
    openface_bin: str | None = option(
        None, help="openface: path of `FeatureExtraction` (required for that backend)"
    )
    openface_model: str | None = option(
        None,
        help=(
            "openface: landmark model, `-mloc`: a path, else relative to the binary's directory "
            "(as OpenFace searches). `null`: OpenFace's default CE-CLM "
            "(`model/main_ceclm_general.txt`, needs the `cen_patches_*.dat` of "
            "`download_models.sh`); a build with only the models in OpenFace's repository needs "
            "`model/main_clnf_general.txt`"
        ),
    )
    openface_scale: float | None = option(
        None,
        range=POSITIVE,
        help=(
            "openface: `-simscale`. `null`: not passed, OpenFace uses 0.7·size/112 and the face "
            "fills ~90 % of the crop at any `size`; `0.7` at size 224 shrinks the face to ~45 % of"
            " the width (hair, neck, background)"
        ),
    )
    timeout: float = option(600.0, range=POSITIVE, help="seconds per clip for ffmpeg / OpenFace")

    @property
    def crop_size(self) -> int:
        return self.size if self.size is not None else SIZE[self.recipe]

    @property
    def keep_failed(self) -> bool:
        """MERTools' frame set: frames without a face stay in, as all-zero crops."""
        return self.recipe == "mertools"


def run(args, params: Params):
    """Crops of the shard (`args.shard` -> `args.out`); returns the Outcome."""
    from .shard import run as work  # cv2 and h5py only when the stage runs

    return work(args, params)


def check_model(params) -> list:
    from .check import check_model as check

    return check(params)
