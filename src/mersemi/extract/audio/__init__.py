"""Stage `audio`: video → 16 kHz mono 16-bit wav per clip, and an index CSV.

    mersemi extract audio --shard shards/shard-0003.csv --out audio/shard-0003.csv

Outputs:
  audio/shard-0003/<name>.wav  the first audio stream, downmixed to mono, resampled (ffmpeg); a
                               name too long for the file system is cut short and hashed
                               (`wav` in the index is the path)
  audio/shard-0003.csv         index `name,wav,valid,reason,duration,detail`, one row per clip in
                               shard order, written atomically and LAST (the tracked output)

Invalid clips (valid=False): no audio stream (`no_audio`), no audio samples (`empty_audio`),
longer than `max_seconds` (`too_long`: the wav is kept, cut at max_seconds), unreadable file
(`decode_error`, `missing_file`).
"""

from dataclasses import dataclass

from ...errors import InputError
from ..common import StageParams

STAGE = "audio"
HELP = "video -> 16 kHz mono wav per clip + index CSV (name,wav,valid,reason,duration,detail)"


@dataclass
class Params(StageParams):
    sample_rate: int = 16000
    max_seconds: float = 60.0  # longer audio is flagged too_long (wav kept, cut here)
    timeout: float = 600.0  # seconds per clip for ffmpeg

    def check(self) -> None:
        if self.sample_rate < 1000:
            raise InputError(f"audio: sample_rate must be at least 1000, got {self.sample_rate}")
        if self.max_seconds <= 0:
            raise InputError(f"audio: max_seconds must be positive, got {self.max_seconds}")


def run(args, params: Params):
    """Extract the shard (`args.shard` -> `args.out`); returns the index frame."""
    from .wavs import run as work  # the work and its imports only when the stage runs

    return work(args, params)
