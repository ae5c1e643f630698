"""Crop geometry of the OpenCV backend: the eye-line angle and one affine warp per face."""

import math

import cv2
import numpy as np


def eye_angle(left: np.ndarray, right: np.ndarray) -> float:
    """Tilt of the eye line in degrees (image coordinates, y down)."""
    d = np.asarray(right, float) - np.asarray(left, float)
    return math.degrees(math.atan2(d[1], d[0]))


def crop_matrix(box, angle: float, margin: float, size: int) -> np.ndarray:
    """2×3 affine map from frame to crop: rotate by `angle` about the face centre (making a
    line tilted by `angle` horizontal), scale the margin-padded face square to size×size."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(w, h) * (1.0 + 2.0 * margin)
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    return m


def align_crop(frame: np.ndarray, box, angle: float, margin: float, size: int) -> np.ndarray:
    m = crop_matrix(box, angle, margin, size)
    return cv2.warpAffine(
        frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
