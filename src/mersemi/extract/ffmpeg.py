"""What a failed ffmpeg call tells us: the last line of its stderr, for a clip's reason detail.
Shared by the stages that decode video (faces' frames) and audio."""


def last_line(err: str) -> str:
    lines = [ln.strip() for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no message)"
