"""The inventory: which videos exist, and which extraction shard each one belongs to.

It is what extraction depends on, and nothing else is: labels, splits and test labels reach
training only (`manifest.label_clips`), transcripts reach the ASR/text stages of their
own shard only. The Snakefile updates it when it loads (main process only), writing a file
only when its content changes, so Snakemake's timestamps see exactly what an edit touched:

    inventory/clips.csv              name, path, source, shard, size, mtime_ns, fingerprint
                                     (every clip)
    inventory/stat_cache.csv         path, size, mtime_ns, ctime_ns, fingerprint: when each
                                     fingerprint was read (no rule reads it)
    inventory/shard-NNNN.csv         name, path: the clips a shard extracts; never rewritten
    inventory/transcripts/shard-NNNN.csv   name, text: provided transcripts of a live shard
    inventory/inventory.json         shards (the config's count), next_shard

Shards are append-only. The first build hashes names into `shards` base shards
(`clips.shard_of`). Afterwards a clip keeps its shard while its file is unchanged (same
path, size, mtime and fingerprint: a hash of the whole file, read again whenever the file's
stat changes, ctime included, so a video replaced by `cp -p`, `tar` or `rsync -t`, or edited in
place, counts as changed); new clips, and changed clips, go into new shards
numbered from `next_shard`, at most (all clips / `shards`) each. So adding N clips extracts
about N clips, a fixed video is extracted again, and nothing else is touched. Removed or
moved clips leave stale rows in their old shard's outputs; the merge keeps for each clip
only the row of the shard that the inventory assigns it (`store.merge_features`). Changing `shards`
starts over from a fresh hash (a full extraction).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .atomic import atomic_path
from .clips import (
    DEFAULT_COLUMNS,
    Columns,
    list_videos,
    shard_file,
    shard_id,
    shard_of,
    unique_names,
)
from .errors import InputError, shorten
from .progress import progress
from .tables import csv_line, missing_text, read_csv_table

log = logging.getLogger(__name__)

SOURCES = ("labeled", "unlabeled", "test")
COLUMNS = ["name", "path", "source", "shard", "size", "mtime_ns", "fingerprint"]
# Any rewrite of a file changes its ctime (a chmod or a copy too, so ctime stays out of
# clips.csv, which rules read): an unchanged stat reuses the fingerprint read before.
STAT = ["path", "size", "mtime_ns", "ctime_ns"]
# What must match for a clip to keep its shard.
SAME_FILE = ["name", "path", "size", "mtime_ns", "fingerprint"]


@dataclass(frozen=True)
class Inventory:
    clips: pd.DataFrame  # COLUMNS, sorted by name
    n_shards: int  # base shard count (config `shards`)
    next_shard: int  # the number the next new shard gets

    @property
    def owners(self) -> dict[str, str]:
        """Clip name -> the id of the shard that extracts it."""
        return dict(zip(self.clips["name"], self.clips["shard"].map(shard_id), strict=True))

    @property
    def shards(self) -> list[str]:
        """Live shards (those that hold a current clip), as file ids."""
        return [shard_id(s) for s in sorted(set(self.clips["shard"]))]


# --------------------------------------------------------------------------- pure core


def assign_shards(
    current: pd.DataFrame, previous: Inventory | None, n_shards: int
) -> tuple[pd.DataFrame, int]:
    """Give every clip of `current` (COLUMNS but shard) a shard.

    Returns the clips with a `shard` column and the next free shard number. Clips unchanged
    since `previous` keep their shard; the others fill new shards (in name order).
    """
    current = current.sort_values("name", kind="stable").reset_index(drop=True)
    if previous is None or previous.n_shards != n_shards:
        shards = [shard_of(n, n_shards) for n in current["name"]]
        return current.assign(shard=shards)[COLUMNS], n_shards
    # an inventory written before fingerprints: keep its shards (no re-extraction on upgrade)
    key = [k for k in SAME_FILE if k in previous.clips.columns]
    kept = current.merge(previous.clips[[*key, "shard"]], on=key, how="left")
    new = kept["shard"].isna().to_numpy()
    next_shard = previous.next_shard
    if new.any():
        size = max(1, math.ceil(len(current) / n_shards))
        count = int(new.sum())
        kept.loc[new, "shard"] = [next_shard + i // size for i in range(count)]
        next_shard += math.ceil(count / size)
    return kept.astype({"shard": int})[COLUMNS], next_shard


# --------------------------------------------------------------------------- I/O edge


def scan(folders: Mapping[str, str | os.PathLike | None]) -> pd.DataFrame:
    """Every video of the source folders with its size and mtime (errors name the file)."""
    rows, seen = [], {}
    for source in SOURCES:
        if not folders.get(source):
            continue
        for name, path in list_videos(folders[source], f"{source} video folder").items():
            if name in seen:
                raise InputError(f"duplicate clip name {name!r}: {seen[name]} and {path}")
            seen[name] = path
            try:
                st = path.stat()
            except OSError as e:
                raise InputError(f"video {path}: cannot stat ({e.strerror})") from None
            rows.append((name, str(path), source, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return pd.DataFrame(rows, columns=["name", "path", "source", "size", "mtime_ns", "ctime_ns"])


def fingerprint(path: str | os.PathLike, size: int) -> str:
    """A content hash of the whole file and its size (BLAKE2b, read in 1 MiB blocks: about
    as fast as the disk; benchmarks/dag_bench.py measures a first inventory)."""
    try:
        with open(path, "rb") as f:
            h = hashlib.file_digest(f, lambda: hashlib.blake2b(str(size).encode(), digest_size=8))
    except OSError as e:
        raise InputError(f"video {path}: cannot read ({e.strerror})") from None
    return h.hexdigest()


def add_fingerprints(current: pd.DataFrame, cache: pd.DataFrame | None) -> pd.DataFrame:
    """`current` with a fingerprint per clip: the cached one where the file's stat is the
    same, else read from the file."""
    known = {}
    if cache is not None:
        rows = map(tuple, cache[STAT].to_numpy().tolist())
        known = dict(zip(rows, cache["fingerprint"], strict=True))
    rows = current[STAT].to_numpy().tolist()
    prints = [known.get(tuple(row)) for row in rows]
    todo = [i for i, p in enumerate(prints) if p is None]
    # hashlib and file reads release the GIL: threads hash several files at once
    bar = progress(total=len(todo), desc="fingerprints", disable=len(todo) < 1000)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for i, p in zip(todo, pool.map(lambda i: fingerprint(*rows[i][:2]), todo), strict=True):
            prints[i] = p
            bar.update(1)
    bar.close()
    return current.assign(fingerprint=prints)


def read_stat_cache(out_dir: Path) -> pd.DataFrame | None:
    path = out_dir / "stat_cache.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"path": str, "fingerprint": str}, keep_default_na=False)


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write `data` unless the file already holds exactly it (keeps its mtime)."""
    if _holds(path, data):
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def read_inventory(out_dir: str | os.PathLike) -> Inventory | None:
    out_dir = Path(out_dir)
    state, clips = out_dir / "inventory.json", out_dir / "clips.csv"
    if not (state.is_file() and clips.is_file()):
        return None
    info = json.loads(state.read_text(encoding="utf-8"))
    strings = {"name": str, "path": str, "source": str, "fingerprint": str}
    df = pd.read_csv(clips, dtype=strings, keep_default_na=False)
    return Inventory(df, int(info["shards"]), int(info["next_shard"]))


def require_inventory(out_dir: str | os.PathLike) -> Inventory:
    inv = read_inventory(out_dir)
    if inv is None:
        raise InputError(f"{out_dir}: no inventory (run `mersemi inventory` or the workflow)")
    return inv


def read_transcripts(
    path: str | os.PathLike, clips: pd.DataFrame, columns: Columns
) -> pd.DataFrame:
    """The provided transcripts (name, text).

    Rows of videos that are not in the folders are kept with a warning (a clip removed from
    the data may keep its transcript row); a CSV that names none of them is an error."""
    path = Path(path)
    df = read_csv_table(path, [columns.name, columns.text], "transcript CSV")
    texts = pd.DataFrame(
        {"name": unique_names(df, columns.name, path, "transcript CSV"), "text": df[columns.text]}
    )
    known = texts["name"].isin(set(clips["name"])).to_numpy()
    if len(texts) and not known.any():
        raise InputError(
            f"transcript CSV {path}: none of its {len(texts)} names is a video in the "
            f"folders (line {csv_line(df, 0)}: {shorten(texts['name'].iloc[0])}); is it the right "
            "file?"
        )
    if not known.all():
        lines = [csv_line(df, i) for i in (~known).nonzero()[0][:5]]
        log.warning(
            "transcript CSV %s: %d row(s) name no video in the folders (lines %s)",
            path,
            int((~known).sum()),
            ", ".join(map(str, lines)),
        )
    return texts


def warn_uneven_transcripts(clips: pd.DataFrame, texts: pd.DataFrame, path) -> None:
    """Warn when provided transcripts cover the labeled clips and the others unevenly: the
    uncovered clips get ASR text, with errors the models never saw on the other side, so the
    text features of the training set and of the pool differ in kind."""
    have = set(texts["name"][~texts["text"].map(missing_text)])
    labeled = (clips["source"] == "labeled").to_numpy()
    parts = {"labeled": clips[labeled], "unlabeled and test": clips[~labeled]}
    if any(part.empty for part in parts.values()):
        return
    covered = {
        what: (int(part["name"].isin(have).sum()), len(part)) for what, part in parts.items()
    }
    shares = [n / total for n, total in covered.values()]
    if abs(shares[0] - shares[1]) > 0.1:
        log.warning(
            "transcript CSV %s covers %s: the others get ASR text, unlike the clips they are "
            "compared with; give every clip a transcript, or none",
            path,
            " but ".join(f"{n}/{total} {what} clips" for what, (n, total) in covered.items()),
        )


def update_inventory(
    out_dir: str | os.PathLike,
    folders: Mapping[str, str | os.PathLike | None],
    n_shards: int,
    transcript_csv: str | os.PathLike | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    stage_dir: str | os.PathLike | None = None,
) -> Inventory:
    """Scan the folders, assign shards, and write the inventory files that changed.

    With `stage_dir`, out_dir is left as it is (another workflow is reading it) and the files
    that would change are written under stage_dir instead, by the same relative names: a dry
    run plans on them. (The stat cache, which no rule reads, is updated in out_dir either way.)
    """
    if n_shards < 1:
        raise InputError(f"shards must be at least 1, got {n_shards}")
    out_dir = Path(out_dir)
    previous = read_inventory(out_dir)
    current = add_fingerprints(scan(folders), read_stat_cache(out_dir))
    clips, next_shard = assign_shards(current, previous, n_shards)
    if clips.empty:
        raise InputError(f"no videos in {', '.join(str(f) for f in folders.values() if f)}")
    inv = Inventory(clips, n_shards, next_shard)
    texts = read_transcripts(transcript_csv, clips, columns) if transcript_csv else None
    if texts is not None:
        warn_uneven_transcripts(clips, texts, transcript_csv)

    files: dict[str, bytes] = {}  # relative name -> content, for the files that changed
    rebuild = previous is None or previous.n_shards != n_shards
    for shard, group in clips.groupby("shard"):
        name = shard_file(shard, ".csv")
        part = out_dir / name
        # A shard's clip list is fixed when the shard is made; a rebuild (new `shards`)
        # rewrites it only if its content differs.
        if rebuild or not part.is_file():
            files[name] = _csv_bytes(group[["name", "path"]])
        if texts is not None:
            # The transcripts of the clips the shard file lists (removed ones too), so that
            # removing a clip does not rerun its shard's ASR and text stages.
            source = io.BytesIO(files[name]) if name in files else part
            listed = pd.read_csv(source, usecols=["name"], dtype=str, keep_default_na=False)
            rows = texts[texts["name"].isin(set(listed["name"]))]
            files[f"transcripts/{name}"] = _csv_bytes(rows)
    files["clips.csv"] = _csv_bytes(clips)
    state = json.dumps({"shards": n_shards, "next_shard": next_shard}, indent=2) + "\n"
    files["inventory.json"] = state.encode()
    target = out_dir if stage_dir is None else Path(stage_dir)
    written = [name for name, data in files.items() if not _holds(out_dir / name, data)]
    for name in written:
        with atomic_path(target / name) as tmp:
            tmp.write_bytes(files[name])
    write_if_changed(out_dir / "stat_cache.csv", _csv_bytes(current[[*STAT, "fingerprint"]]))
    counts = clips["source"].value_counts().to_dict()
    shown = [n for n in written if n != "inventory.json"]
    log.info(
        "inventory %s: %d clips (%s) in %d live shards; %s: %s",
        out_dir,
        len(clips),
        ", ".join(f"{s} {counts.get(s, 0)}" for s in SOURCES),
        len(inv.shards),
        "updated" if stage_dir is None else f"staged in {stage_dir} (in use, left as it is)",
        ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
        if shown
        else "nothing",
    )
    return inv


def _holds(path: Path, data: bytes) -> bool:
    return path.is_file() and path.read_bytes() == data
