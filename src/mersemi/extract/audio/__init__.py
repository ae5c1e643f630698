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

from ...params import POSITIVE, Range, option
from ..common import StageParams

STAGE = "audio"
HELP = "video -> 16 kHz mono wav per clip + index CSV (name,wav,valid,reason,duration,detail)"


@dataclass
class Params(StageParams):
    sample_rate: int = option(16000, range=Range(1000), help="output rate (mono, 16-bit PCM)")
    max_seconds: float = option(
        60.0, range=POSITIVE, help="longer audio is `too_long` (wav kept, cut here)"
    )
    timeout: float = option(600.0, range=POSITIVE, help="seconds per clip for ffmpeg")


def run(args, params: Params):
    """Extract the shard (`args.shard` -> `args.out`); returns the index frame."""
    from .wavs import run as work  # the work and its imports only when the stage runs

    return work(args, params)
