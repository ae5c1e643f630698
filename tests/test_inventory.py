"""The inventory: data edits touch only the inventory files they change."""

import logging
import os
import threading

import pandas as pd
import pytest

from mersemi.clips import Columns, shard_of
from mersemi.errors import InputError
from mersemi.inventory import read_inventory, update_inventory


def folders(root):
    return {"labeled": root / "labeled", "unlabeled": root / "unlabeled"}


def snapshot(inv_dir):
    """file -> (mtime_ns, bytes) of every inventory file a rule reads (not the stat cache)."""
    return {
        p.relative_to(inv_dir).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(inv_dir.rglob("*.csv"))
        if p.name != "stat_cache.csv"
    }


def changed(before, after):
    return sorted(k for k in after if before.get(k) != after[k])


@pytest.fixture
def tree(video_tree):
    root = video_tree(labeled=[f"l{i}" for i in range(20)], unlabeled=[f"u{i}" for i in range(60)])
    (root / "tr.csv").write_text(
        "name,chinese\n" + "".join(f"u{i},句子{i}\n" for i in range(60)), encoding="utf-8"
    )
    return root


def build(root, shards=4, transcripts=True):
    return update_inventory(
        root / "inv", folders(root), shards, root / "tr.csv" if transcripts else None
    )


def test_first_build_hashes_names_into_the_base_shards(tree):
    inv = build(tree)
    clips = inv.clips.set_index("name")
    assert len(clips) == 80 and set(clips["source"]) == {"labeled", "unlabeled"}
    assert all(clips.loc[n, "shard"] == shard_of(n, 4) for n in clips.index)
    assert inv.shards == ["0000", "0001", "0002", "0003"]
    part = pd.read_csv(tree / "inv" / "shard-0002.csv")
    assert list(part.columns) == ["name", "path"]  # no labels, no splits
    assert set(part["name"]) == set(clips.index[clips["shard"] == 2])
    texts = pd.read_csv(tree / "inv" / "transcripts" / "shard-0002.csv")
    assert set(texts["name"]) == set(part["name"]) - {f"l{i}" for i in range(20)}


def test_unchanged_folders_rewrite_nothing(tree):
    build(tree)
    before = snapshot(tree / "inv")
    build(tree)
    assert changed(before, snapshot(tree / "inv")) == []


def test_added_clips_go_to_a_new_shard_and_old_shards_stay(tree):
    first = build(tree)
    before = snapshot(tree / "inv")
    for i in range(60, 65):
        (tree / "unlabeled" / f"u{i}.mp4").write_bytes(b"new")
    inv = build(tree)
    clips = inv.clips.set_index("name")
    old = first.clips.set_index("name")["shard"]
    pd.testing.assert_series_equal(clips.loc[old.index, "shard"], old)
    assert set(clips.loc[[f"u{i}" for i in range(60, 65)], "shard"]) == {4}
    assert inv.shards[-1] == "0004" and inv.next_shard == 5
    # Only the new shard's files and the clip list are written: no old shard reruns.
    assert changed(before, snapshot(tree / "inv")) == [
        "clips.csv",
        "shard-0004.csv",
        "transcripts/shard-0004.csv",
    ]


def test_many_added_clips_fill_shards_of_base_size(tree):
    build(tree)
    for i in range(60, 110):
        (tree / "unlabeled" / f"u{i}.mp4").touch()
    inv = build(tree)
    sizes = inv.clips.groupby("shard").size()
    assert sizes.loc[4:].tolist() == [33, 17]  # 130 clips / 4 base shards: 33 a shard


def test_a_video_changed_in_place_is_extracted_again_alone(tree):
    build(tree)
    before = snapshot(tree / "inv")
    video = tree / "unlabeled" / "u7.mp4"
    video.write_bytes(b"fixed video")
    inv = build(tree)
    assert inv.clips.set_index("name").loc["u7", "shard"] == 4
    assert (inv.clips["shard"] == 4).sum() == 1
    assert "shard-0004.csv" in changed(before, snapshot(tree / "inv"))
    # A touch alone (same size, new mtime) counts too: the file may have been replaced.
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert build(tree).clips.set_index("name").loc["u7", "shard"] == 5


def test_a_video_replaced_keeping_size_and_mtime_is_extracted_again(tree):
    """`cp -p`, `tar` and `rsync -t` keep size and mtime: the fingerprint tells."""
    video = tree / "unlabeled" / "u7.mp4"
    video.write_bytes(b"first video")
    build(tree)
    st = video.stat()
    video.write_bytes(b"other video")  # same size
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    inv = build(tree).clips.set_index("name")
    assert inv.loc["u7", "shard"] == 4 and (inv["shard"] == 4).sum() == 1
    # A chmod changes ctime, not the content: the clip keeps its shard, and no file a rule
    # reads changes.
    before = snapshot(tree / "inv")
    video.chmod(0o600)
    assert build(tree).clips.set_index("name").loc["u7", "shard"] == 4
    assert changed(before, snapshot(tree / "inv")) == []


def test_a_change_in_the_middle_of_a_video_is_seen(tree):
    """Bytes edited in place far from both ends, size, mtime and the first and last 16 KiB
    kept (a probe found the old head-and-tail fingerprint blind to this)."""
    video = tree / "unlabeled" / "u7.mp4"
    data = bytearray(os.urandom(363 * 1024))
    video.write_bytes(data)
    build(tree)
    st = video.stat()
    data[180_000:180_016] = bytes(16)
    with open(video, "r+b") as f:  # in place, as an editor or a partial download would
        f.seek(180_000)
        f.write(bytes(16))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert video.stat().st_size == st.st_size and video.read_bytes() == data
    inv = build(tree).clips.set_index("name")
    assert inv.loc["u7", "shard"] == 4 and (inv["shard"] == 4).sum() == 1


def test_a_fifo_in_a_video_folder_is_skipped_unopened(tree, caplog):
    """Opening a FIFO blocks until someone writes to it: the load must never open one."""
    os.mkfifo(tree / "unlabeled" / "pipe.mp4")
    result = {}
    worker = threading.Thread(target=lambda: result.update(inv=build(tree)), daemon=True)
    with caplog.at_level(logging.WARNING):
        worker.start()
        worker.join(timeout=60)
    assert not worker.is_alive(), "the inventory blocked on a FIFO"
    assert "pipe" not in set(result["inv"].clips["name"]) and len(result["inv"].clips) == 80
    (warning,) = [r.getMessage() for r in caplog.records if "special file" in r.getMessage()]
    assert "unlabeled video folder" in warning and "pipe.mp4" in warning


def test_a_load_beside_a_running_workflow_stages_what_changed(tree):
    """With stage_dir (the results folder is locked by a running workflow), nothing a rule
    reads changes in place; the files that would change are written under stage_dir."""
    build(tree)
    before = snapshot(tree / "inv")
    (tree / "unlabeled" / "u_new.mp4").write_bytes(b"new")
    staged = tree / "staged"
    inv = update_inventory(tree / "inv", folders(tree), 4, tree / "tr.csv", stage_dir=staged)
    assert snapshot(tree / "inv") == before
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.*")) == [
        "clips.csv", "inventory.json", "shard-0004.csv", "transcripts/shard-0004.csv"
    ]  # fmt: skip
    assert "u_new" in set(pd.read_csv(staged / "clips.csv")["name"]) and "u_new" in set(
        inv.clips["name"]
    )
    build(tree)  # once the workflow is done, a load writes the same files in place
    assert changed(before, snapshot(tree / "inv")) == [
        "clips.csv", "shard-0004.csv", "transcripts/shard-0004.csv"
    ]  # fmt: skip


def test_removed_clip_leaves_the_shard_file_alone(tree):
    build(tree)
    before = snapshot(tree / "inv")
    (tree / "unlabeled" / "u3.mp4").unlink()
    inv = build(tree)
    assert "u3" not in set(inv.clips["name"])
    changes = changed(before, snapshot(tree / "inv"))
    assert changes == ["clips.csv"]  # its shard keeps its transcripts too: nothing reruns


def test_transcript_edit_rewrites_its_shard_transcripts_only(tree):
    inv = build(tree)
    shard = inv.clips.set_index("name").loc["u5", "shard"]
    before = snapshot(tree / "inv")
    text = (tree / "tr.csv").read_text(encoding="utf-8").replace("句子5\n", "改过的句子\n")
    (tree / "tr.csv").write_text(text, encoding="utf-8")
    build(tree)
    assert changed(before, snapshot(tree / "inv")) == [f"transcripts/shard-{shard:04d}.csv"]


def test_changing_the_shard_count_starts_over(tree):
    build(tree)
    (tree / "unlabeled" / "u60.mp4").touch()
    build(tree)
    inv = build(tree, shards=2)
    assert inv.shards == ["0000", "0001"] and inv.next_shard == 2
    assert read_inventory(tree / "inv").n_shards == 2


def test_errors_name_the_file_and_line(tree):
    (tree / "tr.csv").write_text("name,chinese\nghost,不在\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"tr.csv: none of its 1 names is a video .*'ghost'"):
        build(tree)
    (tree / "tr.csv").write_text("name,chinese\nu1,好\nu1,不在\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"tr.csv, line 3: duplicate name 'u1'"):
        build(tree)
    (tree / "unlabeled" / "notes.txt").touch()
    with pytest.raises(InputError, match=r"'notes.txt' is not a video"):
        build(tree)
    assert not (tree / "inv").exists()  # nothing written on bad input


def test_configurable_transcript_columns(tree):
    (tree / "tr.csv").write_text("clip,text\nu1,你好\n", encoding="utf-8")
    update_inventory(tree / "inv", folders(tree), 1, tree / "tr.csv", Columns("clip", text="text"))
    texts = pd.read_csv(tree / "inv" / "transcripts" / "shard-0000.csv")
    assert texts.to_dict("records") == [{"name": "u1", "text": "你好"}]


def test_uneven_transcript_coverage_is_named(tree, caplog):
    """Transcripts for one side only: the other side's text comes from ASR, a different kind
    of text than the models trained on. Even coverage says nothing."""
    with caplog.at_level("WARNING", logger="mersemi.inventory"):
        build(tree)
    assert "covers 0/20 labeled clips but 60/60 unlabeled and test clips" in caplog.text
    caplog.clear()
    names = [f"l{i}" for i in range(20)] + [f"u{i}" for i in range(60)]
    (tree / "tr.csv").write_text(
        "name,chinese\n" + "".join(f"{n},句子\n" for n in names), encoding="utf-8"
    )
    with caplog.at_level("WARNING", logger="mersemi.inventory"):
        build(tree)
    assert "covers" not in caplog.text
