"""MERTools feature folders in and out (`mersemi features import|export`, mersemi.featurefolder).

The reference is the test: the folders MERTools' own scripts wrote (shared/fixtures
`mertools-zoo` and `mertools-features`) import with rows equal to the .npy files, bit for bit,
and export back to files byte-identical to MERTools'.
"""

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from mersemi.cli import main
from mersemi.commands import export_feature_folder, import_feature_folder
from mersemi.errors import InputError
from mersemi.featurefolder import feature_name, read_folder, read_names, write_folder
from mersemi.fixtures.shared import shared_fixture
from mersemi.store import FeatureMeta, read_features, write_features

ZOO = shared_fixture("mertools-zoo", "reference.json", "MERSEMI_MERTOOLS_ZOO_FIXTURE")
FEATURES = shared_fixture("mertools-features", "reference.json", "MERSEMI_MERTOOLS_FIXTURE")


def mertools_folders() -> list:
    """Every -UTT folder of the zoo and every modality folder of mertools-features."""
    found = []
    if ZOO is not None:
        found += sorted((ZOO / "mertools" / "features").glob("*-UTT"))
    if FEATURES is not None:
        found += sorted(p for p in (FEATURES / "mertools" / "features").iterdir() if p.is_dir())
    return found or [pytest.param(None, marks=pytest.mark.skip(reason="no MERTools fixture"))]


def modality_of(folder: Path) -> str:
    stems = {p.stem for p in folder.glob("*.npy")}
    if stems & {"astro_tilt", "hopper_pan"}:
        return "visual"
    if any(s.startswith(("w", "u")) for s in stems):
        return "acoustic"
    return "text"


def make_folder(root: Path, rows: dict[str, np.ndarray], feature="tiny") -> Path:
    folder = root / f"{feature}-UTT"
    folder.mkdir(parents=True)
    for name, row in rows.items():
        np.save(folder / f"{name}.npy", row)
    return folder


def rows(n=3, dim=4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"c{i}": rng.standard_normal(dim).astype(np.float32) for i in range(n)}


def one_line_error(fn, *args, **kw) -> str:
    with pytest.raises(InputError) as e:
        fn(*args, **kw)
    message = str(e.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------- (a) MERTools' own folders


@pytest.mark.parametrize("folder", mertools_folders(), ids=lambda p: getattr(p, "name", "none"))
def test_mertools_folder_imports_row_for_row_and_exports_byte_identical(folder, tmp_path):
    files = sorted(folder.glob("*.npy"))
    names = [f.stem for f in files]
    out = tmp_path / "f.h5"
    import_feature_folder(folder, out, modality_of(folder), names)
    fs = read_features(out, modality=modality_of(folder))
    assert list(fs.names) == names and fs.valid.all()
    for f, row in zip(files, fs.features, strict=True):
        ref = np.load(f)
        assert row.dtype == ref.dtype == np.float32
        np.testing.assert_array_equal(row, ref)  # exactly, no tolerance
    assert fs.meta.dim == np.load(files[0]).shape[0]

    exported = export_feature_folder(out, tmp_path / "back", feature=feature_name(folder))
    assert exported.name == f"{feature_name(folder)}-UTT"
    for f in files:  # what we write is what MERTools wrote, byte for byte
        assert (exported / f.name).read_bytes() == f.read_bytes()


@pytest.mark.skipif(ZOO is None, reason="no mertools-zoo fixture")
def test_frame_level_folders_are_refused_in_one_line(tmp_path):
    for fra in sorted((ZOO / "mertools" / "features").glob("*-FRA")):
        names = [f.stem for f in fra.glob("*.npy")]
        message = one_line_error(import_feature_folder, fra, tmp_path / "x.h5", "acoustic", names)
        assert "frame-level" in message and "-UTT" in message
    assert not (tmp_path / "x.h5").exists()


def test_a_frame_level_array_in_a_utt_folder_is_named(tmp_path):
    folder = make_folder(tmp_path, {"c0": np.zeros(4, np.float32), "c1": np.zeros((5, 4))})
    message = one_line_error(read_folder, folder, ["c0", "c1"])
    assert "c1.npy" in message and "(5, 4)" in message and "frame-level" in message


# ----------------------------------------------------------------- (b) round trips


def test_export_then_import_gives_the_same_rows_and_attrs(tmp_path):
    names = ["a", "样本_2", "c d", "e"]
    feats = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    meta = FeatureMeta("text", "tiny-bert", "last 4", "mean", 6, {"seed": 1})
    write_features(tmp_path / "text.h5", meta, names, feats, [True] * 4)
    folder = export_feature_folder(tmp_path / "text.h5", tmp_path / "mt")
    assert folder == tmp_path / "mt" / "text-UTT"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.npy" for n in names)
    import_feature_folder(folder, tmp_path / "back.h5", "text", names)
    back = read_features(tmp_path / "back.h5", modality="text")
    assert list(back.names) == names and back.valid.all()
    np.testing.assert_array_equal(back.features, feats)
    assert back.meta.model == "text" and back.meta.dim == 6
    # and an imported file exports to byte-identical files
    again = export_feature_folder(tmp_path / "back.h5", tmp_path / "mt2", feature="text")
    for n in names:
        assert (again / f"{n}.npy").read_bytes() == (folder / f"{n}.npy").read_bytes()


def test_invalid_rows_are_left_out_and_come_back_as_invalid(tmp_path, caplog):
    names = ["a", "b", "c"]
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    feats[1] = 0
    write_features(
        tmp_path / "v.h5", FeatureMeta("visual", "m", "l", "p", 2), names, feats, [1, 0, 1]
    )
    with caplog.at_level(logging.WARNING):
        folder = export_feature_folder(tmp_path / "v.h5", tmp_path / "mt", feature="m")
    assert sorted(p.name for p in folder.iterdir()) == ["a.npy", "c.npy"]
    assert "1 invalid clip(s) left out" in caplog.text and "'b'" in caplog.text
    message = one_line_error(import_feature_folder, folder, tmp_path / "x.h5", "visual", names)
    assert "b.npy" in message and "--missing invalid" in message
    import_feature_folder(folder, tmp_path / "x.h5", "visual", names, missing="invalid")
    back = read_features(tmp_path / "x.h5")
    assert back.valid.tolist() == [True, False, True]
    np.testing.assert_array_equal(back.features, feats)
    zeros = export_feature_folder(tmp_path / "v.h5", tmp_path / "z", "m", invalid="zeros")
    np.testing.assert_array_equal(np.load(zeros / "b.npy"), np.zeros(2, np.float32))


def test_export_is_atomic_and_refuses_an_existing_folder(tmp_path, monkeypatch):
    names = ["a", "b", "c"]
    write_features(
        tmp_path / "v.h5", FeatureMeta("visual", "m", "l", "p", 2), names, np.ones((3, 2)), [1] * 3
    )
    saves = []

    def failing_save(f, a):
        saves.append(a)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        np.lib.format.write_array(f, a)

    stale = tmp_path / "mt" / ".m-UTT.999999.tmp"  # a killed export's
    stale.mkdir(parents=True)
    (stale / "a.npy").write_bytes(b"")
    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError):
        export_feature_folder(tmp_path / "v.h5", tmp_path / "mt", feature="m")
    assert list((tmp_path / "mt").iterdir()) == []  # no folder, no temp left behind
    monkeypatch.undo()
    folder = export_feature_folder(tmp_path / "v.h5", tmp_path / "mt", feature="m")
    message = one_line_error(export_feature_folder, tmp_path / "v.h5", tmp_path / "mt", "m")
    assert "exists" in message and "--overwrite" in message
    (folder / "stale.npy").write_bytes(b"")
    export_feature_folder(tmp_path / "v.h5", tmp_path / "mt", "m", overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["a.npy", "b.npy", "c.npy"]
    assert [p.name for p in (tmp_path / "mt").iterdir()] == ["m-UTT"]


def test_a_clip_name_that_is_no_file_name_is_refused(tmp_path):
    message = one_line_error(
        write_folder, tmp_path, "m", ["ok", "a/b"], np.zeros((2, 2)), np.ones(2, bool)
    )
    assert "'a/b'" in message
    assert not (tmp_path / "m-UTT").exists()


# ----------------------------------------------------------------- (c) one line naming it


def test_a_missing_clip_is_named(tmp_path):
    folder = make_folder(tmp_path, rows())
    message = one_line_error(read_folder, folder, ["c0", "c1", "c2", "c9"])
    assert "1 clip(s) named have no file: 'c9.npy'" in message
    ff = read_folder(folder, ["c0", "c9"], missing="invalid", extra="drop")
    assert ff.valid.tolist() == [True, False] and ff.missing == ["c9"]
    assert not ff.features[1].any()
    message = one_line_error(read_folder, folder, ["x", "y"], missing="invalid", extra="drop")
    assert "2 clip(s) named have no file: 'x.npy', 'y.npy'" in message
    assert "none of the named clips" in message


def test_an_extra_clip_is_named_or_dropped_when_asked(tmp_path, caplog):
    folder = make_folder(tmp_path, rows())
    message = one_line_error(read_folder, folder, ["c0", "c2"])
    assert "1 file(s) of clip(s) not in the names: 'c1.npy'" in message
    with caplog.at_level(logging.WARNING):
        ff = read_folder(folder, ["c2", "c0"], extra="drop")
    assert ff.names == ["c2", "c0"] and ff.dropped == ["c1"] and "'c1'" in caplog.text
    np.testing.assert_array_equal(ff.features[0], np.load(folder / "c2.npy"))


def test_a_nan_or_inf_file_is_named(tmp_path):
    bad = rows()
    bad["c1"][2] = np.nan
    message = one_line_error(read_folder, make_folder(tmp_path / "n", bad), list(bad))
    assert "c1.npy" in message and "NaN" in message and "index 2" in message
    bad["c1"][2] = np.inf
    message = one_line_error(read_folder, make_folder(tmp_path / "i", bad), list(bad))
    assert "c1.npy" in message and "inf" in message


def test_a_wrong_dim_is_named(tmp_path):
    r = rows()
    r["c2"] = np.zeros(5, np.float32)
    message = one_line_error(read_folder, make_folder(tmp_path, r), list(r))
    assert "c2.npy: dim 5, but c0.npy has dim 4" in message


@pytest.mark.parametrize(
    "content",
    [b"not numpy at all", b"\x93NUMPY\x01\x00", None],
    ids=["garbage", "truncated", "pickled"],
)
def test_a_bad_npy_is_named(tmp_path, content):
    folder = make_folder(tmp_path, rows())
    path = folder / "c1.npy"
    if content is None:
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    message = one_line_error(read_folder, folder, ["c0", "c1", "c2"])
    assert "c1.npy" in message and "not a readable .npy" in message


def test_integer_dtype_and_stray_files_are_named(tmp_path):
    r = rows()
    r["c0"] = np.arange(4)
    message = one_line_error(read_folder, make_folder(tmp_path / "d", r), list(r))
    assert "c0.npy: dtype int64" in message
    folder = make_folder(tmp_path / "s", rows())
    (folder / "notes.txt").write_text("x")
    (folder / ".DS_Store").write_text("x")  # dotfiles are ignored
    assert "'notes.txt' is not a .npy file" in one_line_error(read_folder, folder, ["c0"])
    (folder / "notes.txt").unlink()
    assert read_folder(folder, ["c0", "c1", "c2"]).dim == 4
    message = one_line_error(read_folder, tmp_path / "s", ["c0"])
    assert "holds a folder 'tiny-UTT'" in message


def test_names_from_an_inventory_folder_or_a_csv(tmp_path):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "clips.csv").write_text("name,path\nb,/v/b.mp4\na,/v/a.mp4\n")
    assert read_names(tmp_path / "inv") == ["b", "a"]
    (tmp_path / "m.csv").write_text("clip\na\na\n")
    assert "duplicate name 'a'" in one_line_error(read_names, tmp_path / "m.csv", "clip")
    assert "missing column(s) ['name']" in one_line_error(read_names, tmp_path / "m.csv")


# ----------------------------------------------------------------- (d) the CLI


def test_cli_round_trip_and_exit_code_2_for_bad_input(tmp_path, capsys):
    r = rows()
    folder = make_folder(tmp_path, r)
    (tmp_path / "names.csv").write_text("name\n" + "\n".join(r) + "\n")
    out = tmp_path / "a.h5"
    common = ["--out", str(out), "--modality", "acoustic", "--names", str(tmp_path / "names.csv")]
    assert main(["features", "import", str(folder), *common]) == 0
    with h5py.File(out) as f:
        assert f.attrs["modality"] == "acoustic" and f.attrs["model"] == "tiny"
        np.testing.assert_array_equal(f["features"][1], r["c1"])
    back = tmp_path / "back"
    assert main(["features", "export", str(out), "--out", str(back), "--feature", "x"]) == 0
    assert sorted(p.name for p in (back / "x-UTT").iterdir()) == ["c0.npy", "c1.npy", "c2.npy"]

    (tmp_path / "names.csv").write_text("name\nc0\nc1\nc2\nc3\n")
    assert main(["features", "import", str(folder), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mersemi features: error:") and "'c3.npy'" in err
    assert len(err.splitlines()) == 1
    np.save(folder / "c3.npy", np.full(4, np.nan, np.float32))
    assert main(["features", "import", str(folder), *common]) == 2
    assert "c3.npy: 4 non-finite value(s) (NaN" in capsys.readouterr().err
    assert main(["features", "export", str(tmp_path / "none.h5"), "--out", str(back)]) == 2
    assert "not found" in capsys.readouterr().err
