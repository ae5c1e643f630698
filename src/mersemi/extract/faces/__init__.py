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

from ...errors import InputError
from ..common import StageParams, check_recipe

STAGE = "faces"
HELP = "video -> aligned face crops (OpenCV Haar or OpenFace), HDF5 per shard"

# MERTools' values of the keys a config may set (others are a logged departure)
MERTOOLS = {"backend": "openface", "size": 112, "max_frames": 0}
SIZE = {"mertools": 112, "mersemi": 224}  # default crop side per recipe


@dataclass
class Params(StageParams):
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
        check_recipe(STAGE, self.recipe)
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


def run(args, params: Params):
    """Crops of the shard (`args.shard` -> `args.out`); returns the Outcome."""
    from .shard import run as work  # cv2 and h5py only when the stage runs

    return work(args, params)


def check_model(params) -> list:
    from .check import check_model as check

    return check(params)
