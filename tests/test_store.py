import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mersemi.errors import InputError
from mersemi.store import (
    FeatureMeta,
    FeatureWriter,
    load_aligned,
    merge_features,
    read_features,
    write_features,
)


def meta(modality="visual", dim=4, **params):
    return FeatureMeta(modality, "tiny-clip", "last", "mean", dim, params)


def feats(names, dim=4, offset=0.0):
    return np.arange(len(names) * dim, dtype=np.float32).reshape(len(names), dim) + offset


def test_round_trip_keeps_names_features_valid_and_attrs(tmp_path):
    names = ["sample_1", "样本_2", "c"]
    write_features(tmp_path / "v.h5", meta(seed=1), names, feats(names), [True, False, True])
    fs = read_features(tmp_path / "v.h5", modality="visual")
    assert list(fs.names) == names
    np.testing.assert_array_equal(fs.features, feats(names))
    assert fs.features.dtype == np.float32 and fs.valid.tolist() == [True, False, True]
    assert fs.meta == meta(seed=1)
    with h5py.File(tmp_path / "v.h5") as f:  # plain h5py users see the same contract
        assert f.attrs["modality"] == "visual" and f.attrs["dim"] == 4
        assert f.attrs["digest"] == meta(seed=1).digest != meta(seed=2).digest


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError), FeatureWriter(tmp_path / "v.h5", meta(), 4) as w:
        w.write(0, ["a", "b"], feats("ab"), [True, True])
        raise RuntimeError("killed by a bug halfway")
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(ValueError, match="2 of 4 rows never written"),
        FeatureWriter(tmp_path / "v.h5", meta(), 4) as w,
    ):
        w.write(0, ["a", "b"], feats("ab"), [True, True])
    assert list(tmp_path.iterdir()) == []


def test_killed_process_leaves_no_readable_file(tmp_path):
    # A writer that is SIGKILLed between slices: the final name must never appear.
    script = f"""
import sys, time, numpy as np
from mersemi.store import FeatureMeta, FeatureWriter
m = FeatureMeta("text", "m", "l", "mean", 8, {{}})
with FeatureWriter({str(tmp_path / "t.h5")!r}, m, 1000) as w:
    for i in range(1000):
        w.write(i, [f"n{{i}}"], np.ones((1, 8), np.float32), [True])
        if i == 10:
            print("halfway", flush=True)
            time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "halfway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "t.h5").exists()
    assert not list(tmp_path.glob("*.h5"))  # the leftover temp file is hidden and not *.h5


def test_merge_checks_duplicates_missing_and_parameters(tmp_path):
    s0, s1 = tmp_path / "shard-0000.h5", tmp_path / "shard-0001.h5"
    write_features(s0, meta(), ["a", "b"], feats("ab"), [True, True])
    write_features(s1, meta(), ["c"], feats("c", offset=9), [False])
    merge_features(
        [s0, s1], tmp_path / "m.h5", {"a": "0000", "b": "0000", "c": "0001"}, ["0000", "0001"]
    )
    fs = read_features(tmp_path / "m.h5")
    assert list(fs.names) == ["a", "b", "c"] and fs.valid.tolist() == [True, True, False]
    np.testing.assert_array_equal(fs.features[2], feats("c", offset=9)[0])

    owners = {"a": "0000", "b": "0000", "c": "0001", "d": "0001"}
    with pytest.raises(InputError, match="1 clip\\(s\\) of the inventory missing .*\\['d'\\]"):
        merge_features([s0, s1], tmp_path / "x.h5", owners, ["0000", "0001"])
    write_features(tmp_path / "s2.h5", meta(), ["c"], feats("c"), [True])
    with pytest.raises(InputError, match="name 'c' in both"):
        merge_features([s1, tmp_path / "s2.h5"], tmp_path / "x.h5")
    write_features(tmp_path / "s3.h5", meta(seed=7), ["d"], feats("d"), [True])
    with pytest.raises(InputError, match="different parameters"):
        merge_features([s0, tmp_path / "s3.h5"], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_merge_keeps_each_clip_from_the_shard_that_owns_it(tmp_path):
    # 'b' was removed from the data; 'c' changed in place and was re-extracted in shard 0002.
    s0, s2 = tmp_path / "shard-0000.h5", tmp_path / "shard-0002.h5"
    write_features(s0, meta(), ["a", "b", "c"], feats("abc"), [True, True, True])
    write_features(s2, meta(), ["c"], feats("c", offset=5), [True])
    merge_features([s0, s2], tmp_path / "m.h5", {"a": "0000", "c": "0002"}, ["0000", "0002"])
    fs = read_features(tmp_path / "m.h5")
    assert list(fs.names) == ["a", "c"]
    np.testing.assert_array_equal(fs.features[1], feats("c", offset=5)[0])


def test_aligned_reader_joins_by_name(tmp_path):
    write_features(tmp_path / "v.h5", meta("visual", 4), ["a", "b", "c"], feats("abc"), [1, 1, 1])
    write_features(
        tmp_path / "a.h5", meta("acoustic", 3), ["c", "a", "b"], feats("cab", 3), [1, 0, 1]
    )
    al = load_aligned({"visual": tmp_path / "v.h5", "acoustic": tmp_path / "a.h5"})
    assert list(al.names) == ["a", "b", "c"]
    np.testing.assert_array_equal(al.features["acoustic"][0], feats("cab", 3)[1])  # row of 'a'
    assert al.valid["acoustic"].tolist() == [False, True, True]


def test_misaligned_stores_are_refused_unless_inner_is_chosen(tmp_path):
    write_features(tmp_path / "v.h5", meta("visual", 4), ["a", "b"], feats("ab"), [1, 1])
    write_features(tmp_path / "t.h5", meta("text", 4), ["b", "z"], feats("bz"), [1, 1])
    paths = {"visual": tmp_path / "v.h5", "text": tmp_path / "t.h5"}
    with pytest.raises(InputError, match="misaligned"):
        load_aligned(paths)
    assert list(load_aligned(paths, how="inner").names) == ["b"]
    with pytest.raises(InputError, match="dim 4, expected 5120"):
        load_aligned(paths, dims={"text": 5120})
    with pytest.raises(InputError, match="holds 'visual', expected 'text'"):
        load_aligned({"text": tmp_path / "v.h5"})


def test_unreadable_file_is_named(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="bad.h5: not a readable HDF5 file"):
        read_features(tmp_path / "bad.h5")
    with pytest.raises(InputError, match="missing.h5: not found"):
        read_features(tmp_path / "missing.h5")


def test_empty_shard_is_valid(tmp_path):
    write_features(tmp_path / "e.h5", meta(), [], np.zeros((0, 4), np.float32), [])
    assert len(read_features(tmp_path / "e.h5")) == 0


def test_temp_files_of_long_names_fit_and_stale_ones_are_cleaned(tmp_path):
    from mersemi.atomic import atomic_path

    long = tmp_path / ("视" * 80 + ".wav")  # 240 bytes: the decorated temp name would not fit
    with atomic_path(long) as tmp:
        assert len(os.fsencode(tmp.name)) <= 255
        tmp.write_bytes(b"x")
    assert long.read_bytes() == b"x"

    final = tmp_path / "shard-0001.h5"
    stale = tmp_path / ".shard-0001.h5.99999999.tmp"  # left by a job killed with -9
    stale.write_bytes(b"half")
    other = tmp_path / ".shard-0002.h5.99999999.tmp"
    other.write_bytes(b"another output's")
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"done")
    assert not stale.exists() and other.exists() and final.read_bytes() == b"done"


def test_disk_full_is_one_line(monkeypatch, capsys):
    import errno

    from mersemi import commands
    from mersemi.cli import main

    def full(*args, **kwargs):
        raise OSError(
            errno.ENOSPC,
            "Can't close file (file write failed: filename = '/r/.visual.h5.12.tmp', errno = 28)",
        )

    monkeypatch.setattr(commands, "merge_features", full)
    assert main(["store", "merge", "a.h5", "--out", "m.h5"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk full" in err and "/r/.visual.h5.12.tmp" in err


def test_merge_needs_one_shard_id_per_file(tmp_path, capsys):
    """The rule names each file's shard (`--shard-ids`); a missing, short or repeated list is
    refused with a line that says so, and a shard without a file is named."""
    from mersemi.cli import main

    s0, s1 = tmp_path / "visual-a.h5", tmp_path / "visual-b.h5"
    write_features(s0, meta(), ["a"], feats("a"), [True])
    write_features(s1, meta(), ["c"], feats("c"), [True])
    owners = {"a": "0000", "c": "0001"}
    out = tmp_path / "m.h5"
    with pytest.raises(InputError, match="need each file's shard id"):
        merge_features([s0, s1], out, owners)
    with pytest.raises(InputError, match=r"1 shard id\(s\) for 2 shard file\(s\)"):
        merge_features([s0, s1], out, owners, ["0000"])
    with pytest.raises(InputError, match="shard 0000 given twice"):
        merge_features([s0, s1], out, owners, ["0000", "0000"])
    with pytest.raises(
        InputError, match=r"missing .*\['c'\] \(no file given for shard\(s\) 0001\)"
    ):
        merge_features([s0], out, owners, ["0000"])
    assert not out.exists()
    merge_features([s0, s1], out, owners, ["0000", "0001"])  # any file names will do
    assert list(read_features(out).names) == ["a", "c"]

    inv = tmp_path / "inv"
    tree = tmp_path / "tree"
    for d in ("labeled", "unlabeled"):
        (tree / d).mkdir(parents=True)
    (tree / "labeled" / "a.mp4").write_bytes(b"x")
    argv = ["inventory", "--labeled-dir", str(tree / "labeled"), "--unlabeled-dir",
            str(tree / "unlabeled"), "--shards", "1", "--out-dir", str(inv)]  # fmt: skip
    assert main(argv) == 0
    assert main(["store", "merge", str(s0), "--inventory", str(inv), "--out", str(out)]) == 2
    assert "shard id" in capsys.readouterr().err
    argv = ["store", "merge", str(s0), "--inventory", str(inv), "--shard-ids", "0000", "--out",
            str(tmp_path / "n.h5")]  # fmt: skip
    assert main(argv) == 0


def test_file_attrs_name_the_weights_by_revision(tmp_path):
    """`model_revision` tells which weights made a file: an HF folder by its config.json's
    sha256 (so new weights under the same path show), a torch checkpoint by its records (the
    same weights saved under another name keep it: the demo's writer saves to a temp name),
    another file by size and head, an open_clip tag by nothing."""
    import hashlib
    from dataclasses import replace

    model = tmp_path / "wavlm"
    model.mkdir()
    (model / "config.json").write_text('{"num_hidden_layers": 2}')
    ckpt = tmp_path / "clip.pt"
    ckpt.write_bytes(b"\x01" * 3000)

    def revision(m):
        write_features(tmp_path / "f.h5", replace(meta(), model=str(m)), ["a"], feats(["a"]), [1])
        with h5py.File(tmp_path / "f.h5") as f:
            return f.attrs["model_revision"]

    want = hashlib.sha256(b'{"num_hidden_layers": 2}').hexdigest()[:12]
    assert revision(model) == f"config.json sha256 {want}"
    (model / "config.json").write_text('{"num_hidden_layers": 3}')
    assert want not in revision(model)
    want = hashlib.sha256(b"\x01" * 3000).hexdigest()[:12]
    assert revision(ckpt) == f"3000 bytes, head sha256 {want}"
    assert revision("ViT-L-14") == ""
    import torch

    state = {"w": torch.arange(4.0)}
    torch.save(state, tmp_path / ".clip.pt.123.tmp")
    torch.save(state, tmp_path / "clip2.pt")
    saved = revision(tmp_path / "clip2.pt")
    assert saved.startswith("zip records sha256 ")
    assert revision(tmp_path / ".clip.pt.123.tmp") == saved
    torch.save({"w": torch.arange(4.0) + 1}, tmp_path / "clip2.pt")
    assert revision(tmp_path / "clip2.pt") != saved
