"""Which ffmpeg binary to run: a system ffmpeg on PATH, else the one in the imageio-ffmpeg wheel."""

import functools
import os
import shutil


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary. MERSEMI_FFMPEG overrides; no apt step is ever needed."""
    override = os.environ.get("MERSEMI_FFMPEG")
    if override:
        return override
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
