"""OpenCV's Haar cascades: the largest face of a frame, eye-level alignment, the crop."""

import threading
from pathlib import Path

import cv2
import numpy as np

from ...errors import InputError
from . import Params
from .geometry import align_crop, eye_angle


class HaarAligner:
    """Largest-face detection and eye-level alignment with OpenCV's Haar cascades.

    Thread-safe: each thread gets its own CascadeClassifier pair.
    """

    def __init__(self, p: Params):
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
