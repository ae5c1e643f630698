import pandas as pd
import pytest
from helpers.manifest import build_manifest

from mersemi.atomic import write_csv_atomic
from mersemi.cli import main
from mersemi.clips import shard_of
from mersemi.errors import InputError
from mersemi.manifest import read_manifest


def _build(root, **kw):
    return build_manifest(
        labeled_dir=root / "labeled",
        label_csv=root / "labels.csv",
        unlabeled_dir=root / "unlabeled",
        n_shards=kw.pop("n_shards", 4),
        **kw,
    )


def test_splits_labels_and_test_clips_hidden_in_unlabeled(video_tree):
    root = video_tree(labeled=("a", "b"), unlabeled=("u1", "u2", "t1"))
    (root / "test_labels.csv").write_text("name,discrete\nt1,Sad\n")
    df = _build(root, test_label_csv=root / "test_labels.csv").set_index("name")
    assert df.loc["a", "split"] == "train" and df.loc["a", "label"] == "happy"
    assert df.loc["u1", "split"] == "unlabeled" and df.loc["u1", "label"] == ""
    assert df.loc["t1", "split"] == "test" and df.loc["t1", "label"] == "sad"
    assert df.loc["u2", "path"].endswith("unlabeled/u2.mp4")


def test_shards_stable_when_videos_are_added(video_tree):
    root = video_tree(labeled=[f"l{i}" for i in range(30)], unlabeled=[f"u{i}" for i in range(200)])
    before = _build(root, n_shards=8).set_index("name")["shard"]
    for i in range(200, 400):
        (root / "unlabeled" / f"u{i}.mp4").touch()
    after = _build(root, n_shards=8).set_index("name")["shard"]
    assert len(after) == 430
    pd.testing.assert_series_equal(after.loc[before.index], before)
    assert after.nunique() == 8  # the hash spreads clips over every shard


def test_shard_of_is_deterministic_across_processes():
    # blake2b, not Python's salted hash(): a fixed value guards against regressions.
    assert [shard_of(n, 16) for n in ("sample_00000001", "样本_1")] == [
        shard_of("sample_00000001", 16),
        shard_of("样本_1", 16),
    ]
    assert shard_of("sample_00000001", 1) == 0


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([("a", "happy"), ("b", "joy")], "line 3: label 'joy' of 'b' is not one of"),
        (
            [("a", "happy"), ("a", "sad"), ("b", "sad")],
            "line 3: duplicate name 'a' (first on line 2)",
        ),
        ([("a", "happy"), ("b", "sad"), ("zz", "sad")], "line 4: no video named 'zz'"),
        ([("a", "happy")], "labeled video"),
    ],
)
def test_bad_label_rows_are_named(video_tree, labels, message):
    root = video_tree(labels=labels)
    with pytest.raises(InputError) as e:
        _build(root)
    assert message in str(e.value)
    assert "labels.csv" in str(e.value) or "labeled video" in str(e.value)


def test_non_video_file_and_duplicate_names(video_tree):
    root = video_tree()
    (root / "unlabeled" / "notes.txt").touch()
    with pytest.raises(InputError, match=r"'notes.txt' is not a video"):
        _build(root)
    (root / "unlabeled" / "notes.txt").unlink()
    (root / "unlabeled" / "a.avi").touch()  # same name as a labeled clip
    with pytest.raises(InputError, match="duplicate clip name 'a'"):
        _build(root)


def test_unreadable_csv_is_named(video_tree):
    root = video_tree()
    (root / "labels.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="labels.csv: cannot read"):
        _build(root)
    (root / "labels.csv").write_text("clip,emotion\na,happy\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['name', 'discrete'\]"):
        _build(root)


def test_configurable_columns_and_transcripts(video_tree):
    from mersemi.clips import Columns

    root = video_tree(labels=[])
    (root / "labels.csv").write_text("clip,emo\na,angry\nb,neutral\n")
    (root / "tr.csv").write_text("clip,text\nghost,不在\n", encoding="utf-8")
    cols = Columns(name="clip", label="emo", text="text")
    with pytest.raises(InputError, match="tr.csv: none of its 1 names is a video"):
        _build(root, columns=cols, transcript_csv=root / "tr.csv")
    (root / "tr.csv").write_text("clip,text\na,你好\n", encoding="utf-8")
    df = _build(root, columns=cols, transcript_csv=root / "tr.csv")
    assert sorted(df["label"]) == ["", "", "angry", "neutral"]


def manifest_argv(root, out, shards):
    """Build the inventory of `root`'s folders; the `mersemi manifest` argv that reads it."""
    assert main(["inventory", "--labeled-dir", str(root / "labeled"),
                 "--unlabeled-dir", str(root / "unlabeled"), "--shards", str(shards),
                 "--out-dir", str(out / "inventory")]) == 0  # fmt: skip
    return ["manifest", "--inventory", str(out / "inventory"), "--label-csv",
            str(root / "labels.csv"), "--out", str(out / "manifest.csv")]  # fmt: skip


def test_cli_writes_nothing_on_bad_input(video_tree, capsys):
    root = video_tree(labels=[("a", "happy"), ("b", "bored")])
    out = root / "out"
    argv = manifest_argv(root, out, shards=3)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "labels.csv, line 3: label 'bored'" in err and "Traceback" not in err
    assert not (out / "manifest.csv").exists()

    (root / "labels.csv").write_text("name,discrete\na,happy\nb,worried\n")
    assert main(argv) == 0
    full = read_manifest(out / "manifest.csv")
    assert sorted(full["name"]) == ["a", "b", "u1", "u2"]
    assert dict(zip(full["name"], full["label"], strict=True)) == {
        "a": "happy", "b": "worried", "u1": "", "u2": ""
    }  # fmt: skip


def test_splits_without_labels_ignore_the_label_csv(video_tree, tmp_path):
    """The splits file (pretraining's input) reads no label CSV: a broken or edited label
    cannot reach it, while test clips named in the test-label CSV keep their split."""
    root = video_tree(labels=[("a", "happy"), ("b", "bored")])
    (root / "test.csv").write_text("name,discrete\nu2,sad\n")
    inv = tmp_path / "inventory"
    assert main(["inventory", "--labeled-dir", str(root / "labeled"),
                 "--unlabeled-dir", str(root / "unlabeled"), "--shards", "3",
                 "--out-dir", str(inv)]) == 0  # fmt: skip
    out = tmp_path / "splits.csv"
    argv = ["manifest", "--inventory", str(inv), "--test-label-csv", str(root / "test.csv"),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    df = read_manifest(out)
    assert dict(zip(df["name"], df["split"], strict=True)) == {
        "a": "train", "b": "train", "u1": "unlabeled", "u2": "test"
    }  # fmt: skip
    assert set(df["label"]) == {""}


def test_non_ascii_names_round_trip(video_tree, tmp_path):
    root = video_tree(labeled=("开心_01", "b"), labels=[("开心_01", "happy"), ("b", "sad")])
    df = _build(root, n_shards=2)
    write_csv_atomic(df, tmp_path / "m.csv")
    assert "开心_01" in set(read_manifest(tmp_path / "m.csv")["name"])


def test_non_utf8_file_name_is_named(video_tree):
    import os

    root = video_tree()
    os.close(os.open(os.fsencode(root / "unlabeled") + b"/bad\xff.mp4", os.O_CREAT))
    with pytest.raises(InputError, match=r"file name b'bad\\xff.mp4' is not valid UTF-8"):
        _build(root)


def test_a_repeated_column_is_refused(video_tree):
    """`name,discrete,discrete` with conflicting values: pandas silently renamed the second."""
    root = video_tree()
    (root / "labels.csv").write_text("name,discrete,discrete\na,happy,sad\nb,happy,happy\n")
    with pytest.raises(InputError, match=r"labels.csv: column\(s\) 'discrete' appear twice"):
        _build(root)


def test_a_huge_value_is_elided_in_the_error_line(video_tree, capsys):
    """A 5 MB name in a label CSV: the error names its line and shows the value's ends only."""
    root = video_tree()
    (root / "labels.csv").write_text(f"name,discrete\na,happy\n{'x' * 5_000_000},sad\n")
    out = root / "out"
    argv = manifest_argv(root, out, shards=1)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400
    assert "labels.csv, line 3: no video named 'xxx" in err and "(5000000 characters)" in err
