"""Pixels and samples of the demo clips: real face photographs with per-class cues.

Pure numpy/OpenCV (arrays out, no files). Every random choice comes from the `rng` passed in,
so a clip is a function of its seed alone.

Cues per class (see docs/demo.md):
- colour cast of the face (multiplicative RGB gains, strength jittered per clip);
- head motion over the clip (translation / in-plane rotation / scale pattern);
- voice-like harmonic audio whose fundamental frequency (pitch) depends on the class, with a
  class-specific syllable rate and loudness, per-clip pitch jitter, vibrato and noise.
"""

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..classes import CLASSES

FRAME_SIZE = 160  # square frames, even (yuv420p)
FPS = 12
SAMPLE_RATE = 16000
FACE_PX = 92  # side of the face photograph in the frame, before per-clip jitter
# lfw_subset faces that OpenCV's frontal Haar cascade misses in more than 5 % of demo frames
# (screened once over 18 rendered clips per face; fixed here so the pool never depends on the
# OpenCV version).
LFW_SKIP = frozenset({4, 13, 22, 30, 83, 96})

# Multiplicative RGB gains on the face photograph.
COLOUR_CAST: dict[str, tuple[float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0),
    "angry": (1.35, 0.78, 0.78),  # red
    "happy": (1.22, 1.12, 0.62),  # warm yellow
    "sad": (0.72, 0.88, 1.35),  # blue
    "worried": (0.82, 1.22, 0.88),  # green
    "surprise": (1.25, 0.78, 1.28),  # magenta
}
# Fundamental frequency of the voice-like audio, Hz (neighbours at least 1.2x apart).
PITCH_HZ: dict[str, float] = {
    "sad": 110.0,
    "neutral": 140.0,
    "worried": 175.0,
    "angry": 215.0,
    "happy": 262.0,
    "surprise": 320.0,
}
PITCH_JITTER = 0.04  # per-clip relative jitter of the fundamental, uniform +-
# Syllable rate (Hz) and loudness (peak amplitude) of the voice.
SYLLABLE_HZ: dict[str, float] = {
    "neutral": 3.5,
    "angry": 6.0,
    "happy": 5.0,
    "sad": 2.5,
    "worried": 4.0,
    "surprise": 4.5,
}
LOUDNESS: dict[str, float] = {
    "neutral": 0.35,
    "angry": 0.6,
    "happy": 0.5,
    "sad": 0.25,
    "worried": 0.3,
    "surprise": 0.55,
}
MOTION: dict[str, str] = {
    "neutral": "still, tiny drift",
    "angry": "fast horizontal shake",
    "happy": "vertical bounce with a light sway",
    "sad": "slow droop down with a forward tilt, shrinking",
    "worried": "side-to-side head tilt (in-plane rotation)",
    "surprise": "sudden jump up and towards the camera (zoom) early in the clip",
}
assert set(COLOUR_CAST) == set(PITCH_HZ) == set(MOTION) == set(CLASSES)


@dataclass(frozen=True)
class Face:
    """A face photograph (RGB uint8, square) and where it came from."""

    source: str
    rgb: np.ndarray


@functools.cache
def face_pool() -> tuple[Face, ...]:
    """All face photographs shipped with scikit-image (no download needed).

    The astronaut (Eileen Collins, colour) cropped around her face, and the 100 face images of
    `lfw_subset` (Labeled Faces in the Wild, 25x25 grey, tight crops) but LFW_SKIP, given a skin
    tone.
    """
    import skimage.data

    faces = []
    astro = skimage.data.astronaut()
    # The OpenCV frontal Haar cascade finds her face at x 177, y 66, w 95, h 95; crop a square
    # from the brows to the chin, like LFW's tight crops (and clear of the dark suit collar).
    faces.append(Face("astronaut", np.ascontiguousarray(astro[64:162, 180:278])))
    lfw = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    tones = np.array([[1.06, 0.96, 0.86], [1.0, 0.93, 0.84], [0.98, 0.9, 0.8], [1.04, 0.97, 0.9]])
    for i, grey in enumerate(lfw):
        if i in LFW_SKIP:
            continue
        rgb = np.clip(grey[..., None] * 255.0 * tones[i % len(tones)], 0, 255)
        faces.append(Face(f"lfw_subset[{i}]", rgb.astype(np.uint8)))
    return tuple(faces)


def pick_face(rng: np.random.Generator) -> Face:
    """A face independent of the class: the astronaut a quarter of the time, else an LFW face."""
    pool = face_pool()
    if rng.random() < 0.25:
        return pool[0]
    return pool[1 + int(rng.integers(len(pool) - 1))]


def _motion(label: str, t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-frame dx, dy (pixels), angle (degrees, counter-clockwise) and scale for a class."""
    T = t[-1] if len(t) > 1 else 1.0
    u = t / T
    amp = rng.uniform(0.8, 1.2)
    ph = rng.uniform(0, 2 * np.pi)
    zero = np.zeros_like(t)
    one = np.ones_like(t)
    if label == "neutral":
        dx = amp * 1.0 * np.sin(2 * np.pi * 0.3 * t + ph)
        return dx, zero, zero, one
    if label == "angry":
        dx = amp * 7.0 * np.sin(2 * np.pi * 3.0 * t + ph)
        return dx, zero, 2.0 * np.sin(2 * np.pi * 3.0 * t + ph), 1.05 * one
    if label == "happy":
        dy = -amp * 6.0 * np.abs(np.sin(2 * np.pi * 1.8 * t + ph))
        return zero, dy, 3.0 * np.sin(2 * np.pi * 0.9 * t + ph), one
    if label == "sad":
        return zero, amp * 10.0 * u, -4.0 * u, 1.0 - 0.08 * u
    if label == "worried":
        return (
            2.0 * np.sin(2 * np.pi * 1.5 * t + ph),
            zero,
            amp * 8.0 * np.sin(2 * np.pi * 1.5 * t + ph),
            one,
        )
    if label == "surprise":
        onset = rng.uniform(0.15, 0.35)
        step = 1.0 / (1.0 + np.exp(-(u - onset) * 40.0))
        return zero, -amp * 7.0 * step, zero, 1.0 + 0.14 * step
    raise ValueError(f"unknown class {label!r}")


def render_frames(label: str, face: Face, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Frames (n_frames, FRAME_SIZE, FRAME_SIZE, 3) uint8 RGB of one clip."""
    size = FRAME_SIZE
    face_px = int(round(FACE_PX * rng.uniform(0.92, 1.08)))
    rgb = face.rgb[:, ::-1] if rng.random() < 0.5 else face.rgb
    patch = cv2.resize(np.ascontiguousarray(rgb), (face_px, face_px), interpolation=cv2.INTER_CUBIC)
    gains = np.asarray(COLOUR_CAST[label]) ** rng.uniform(0.8, 1.2)
    patch = np.clip(patch.astype(np.float32) * gains * rng.uniform(0.92, 1.08), 0, 255)
    # Feathered alpha so the photograph's square edge blends into the background.
    ramp = np.clip(np.minimum(np.arange(face_px), np.arange(face_px)[::-1]) / 4.0, 0, 1)
    alpha = np.outer(ramp, ramp).astype(np.float32)
    rgba = np.dstack([patch, alpha]).astype(np.float32)

    # Muted background: a per-clip colour with a vertical gradient (no class information).
    base = rng.uniform(70, 170, size=3)
    tilt = rng.uniform(-30, 30, size=3)
    ys = np.linspace(-0.5, 0.5, size, dtype=np.float32)[:, None, None]
    bg = np.clip(base + tilt * ys, 0, 255).astype(np.float32) * np.ones((1, size, 1), np.float32)

    t = np.arange(n_frames) / FPS
    dx, dy, angle, scale = _motion(label, t, rng)
    cx = size / 2 + rng.uniform(-6, 6)
    cy = size / 2 + rng.uniform(-6, 6)
    c = face_px / 2 - 0.5
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for i in range(n_frames):
        m = cv2.getRotationMatrix2D((c, c), float(angle[i]), float(scale[i]))
        m[0, 2] += cx + dx[i] - c
        m[1, 2] += cy + dy[i] - c
        warped = cv2.warpAffine(
            rgba, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        a = warped[..., 3:]
        frames[i] = np.clip(warped[..., :3] * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    return frames


def render_audio(label: str, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 in [-1, 1] at SAMPLE_RATE: a harmonic voice-like signal plus noise."""
    t = np.arange(n_samples) / SAMPLE_RATE
    dur = max(n_samples / SAMPLE_RATE, 1e-3)
    f0 = PITCH_HZ[label] * (1 + rng.uniform(-PITCH_JITTER, PITCH_JITTER))
    vib = 1 + 0.015 * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t + rng.uniform(0, 2 * np.pi))
    f = f0 * vib
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    # Harmonics falling as 1/k^1.3: the fundamental dominates the spectrum.
    voice = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**1.3 for k in range(1, 7))
    voice /= np.max(np.abs(voice)) + 1e-9
    # Syllables: raised-cosine bursts at a class-specific rate, with short fades at both ends.
    rate = SYLLABLE_HZ[label] * rng.uniform(0.9, 1.1)
    env = 0.55 + 0.45 * np.cos(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    fade = np.clip(np.minimum(t, dur - t) / 0.05, 0, 1)
    loud = LOUDNESS[label] * rng.uniform(0.85, 1.15)
    noise = rng.normal(0, 0.02, n_samples)
    return np.clip(loud * voice * env * fade + noise, -1, 1).astype(np.float32)
