"""The file format of a decoded shard (written by `decode`, read by `merge`)."""

from pathlib import Path

# then one text column per decoding mode the model offers
COLUMNS = ["name", "text", "source", "audio_valid", "reason", "detail"]


def decode_info_path(out) -> Path:
    """`asr/shard-0003.csv` -> `asr/shard-0003.decode.json` (model, decoding, modes, device)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.decode.json")
