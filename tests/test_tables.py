"""The user's CSV files: the file line of each row, and the cells that hold no text."""

import io
import logging

import pandas as pd
import pytest

from mersemi.clips import DEFAULT_COLUMNS
from mersemi.errors import InputError
from mersemi.inventory import read_transcripts, scan, update_inventory
from mersemi.manifest import label_clips
from mersemi.tables import NA_STRINGS, csv_line, missing_text, read_csv_table


def _write(path, lines, newline="\n", bom=False):
    """A CSV file of `lines` (a cell may hold a newline), in `newline` line endings."""
    text = "".join(line.replace("\n", newline) + newline for line in lines)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def _clips(root):
    return scan({"labeled": root / "labeled", "unlabeled": root / "unlabeled"}).assign(shard=0)


@pytest.mark.parametrize(("newline", "bom"), [("\n", False), ("\r\n", False), ("\r\n", True)])
def test_error_lines_count_the_lines_of_a_quoted_cell(video_tree, newline, bom):
    """A label CSV whose row 2 holds a transcript over two lines: the bad label below it is on
    file line 6, not on line 5 (one line per row)."""
    root = video_tree(labeled=("a", "b", "c", "d"))
    rows = ["name,discrete,chinese", "a,happy,好", 'b,sad,"第一行\n第二行"', "c,sad,嗯"]
    _write(root / "labels.csv", [*rows, "d,joy,哦"], newline, bom)
    with pytest.raises(InputError, match=r"labels.csv, line 6: label 'joy' of 'd'"):
        label_clips(_clips(root), root / "labels.csv")

    _write(root / "labels.csv", [*rows, "a,sad,又"], newline, bom)
    with pytest.raises(InputError, match=r"line 6: duplicate name 'a' \(first on line 2\)"):
        label_clips(_clips(root), root / "labels.csv")

    _write(root / "labels.csv", [*rows, "d,sad,哦", "zz,sad,无"], newline, bom)
    with pytest.raises(InputError, match=r"labels.csv, line 7: no video named 'zz'"):
        label_clips(_clips(root), root / "labels.csv")

    _write(root / "labels.csv", [*rows, "d,sad,哦"], newline, bom)
    test_rows = ["name,discrete,chinese", 'u1,sad,"一\n二\n三"', "a,happy,好"]
    _write(root / "test_labels.csv", test_rows, newline, bom)
    with pytest.raises(InputError, match=r"test_labels.csv, line 5: no video named 'a'"):
        label_clips(_clips(root), root / "labels.csv", root / "test_labels.csv")


def test_transcript_rows_of_no_video_name_their_file_lines(video_tree, caplog):
    root = video_tree(labeled=("a",), unlabeled=())
    tr = _write(root / "tr.csv", ["name,chinese", 'a,"第一行\n第二行"', "ghost,不在"])
    with caplog.at_level(logging.WARNING, logger="mersemi.inventory"):
        read_transcripts(tr, _clips(root), DEFAULT_COLUMNS)
    assert "1 row(s) name no video in the folders (lines 4)" in caplog.text
    _write(root / "tr.csv", ["name,chinese", "", 'ghost,"第一行\n第二行"'])
    with pytest.raises(InputError, match=r"\(line 3: 'ghost'\)"):
        read_transcripts(tr, _clips(root), DEFAULT_COLUMNS)


def test_row_lines_are_the_rows_pandas_reads(tmp_path):
    """Blank and whitespace-only lines are skipped as pandas skips them; a quoted empty cell is
    a row; a header over two lines moves every row down; no line ending at the end."""
    path = tmp_path / "t.csv"
    path.write_text('"na\nme",x\n\na,1\n \t\n""\n"b\n\nc",2\nd,3', encoding="utf-8")
    df = read_csv_table(path, ["na\nme", "x"], "test CSV")
    assert df["na\nme"].tolist() == ["a", "", "b\n\nc", "d"]
    assert [csv_line(df, i) for i in range(len(df))] == [4, 6, 7, 10]
    path.write_bytes(b'name,x\ra,1\r"b\rc",2\r')  # old Mac line endings
    df = read_csv_table(path, ["name", "x"], "test CSV")
    assert [csv_line(df, i) for i in range(len(df))] == [2, 3]
    # the lines ride along in df.attrs without breaking what pandas does with attrs
    both = pd.concat([df, read_csv_table(path, ["name", "x"], "test CSV")])
    assert len(both) == 4 and len(pd.concat([df, df.iloc[:1]])) == 3
    # a cell over the csv module's default field size limit (128 KiB)
    path.write_text(f'name,x\na,"{"长" * 200_000}\n"\nb,2\n', encoding="utf-8")
    df = read_csv_table(path, ["name", "x"], "test CSV")
    assert [csv_line(df, i) for i in range(len(df))] == [2, 4]


def test_na_strings_are_what_pandas_reads_as_missing():
    """The reference is pandas: `read_csv` with its defaults reads each string as NaN."""
    cells = sorted(NA_STRINGS - {""})
    csv_text = "name,text\n" + "".join(f"c{i},{s}\n" for i, s in enumerate(cells)) + "e,\n"
    df = pd.read_csv(io.StringIO(csv_text))
    assert df["text"].isna().all(), df[df["text"].notna()]
    assert len(df) == len(NA_STRINGS)
    parsers = pytest.importorskip("pandas._libs.parsers")
    if hasattr(parsers, "STR_NA_VALUES"):  # pandas' own set (private), where it has one
        assert set(parsers.STR_NA_VALUES) == NA_STRINGS


@pytest.mark.parametrize("cell", ["", "  ", "NaN", " nan ", "None", "NULL", "N/A", "<NA>", "\tNA"])
def test_missing_text(cell):
    assert missing_text(cell)


@pytest.mark.parametrize("cell", ["你好", "nan你好", "Nan", "0", "-", "none of it"])
def test_not_missing_text(cell):
    assert not missing_text(cell)


def test_nan_transcripts_do_not_count_as_coverage(video_tree, caplog):
    """Transcripts written by pandas from missing values: `NaN` covers no clip."""
    root = video_tree(labeled=[f"l{i}" for i in range(10)], unlabeled=[f"u{i}" for i in range(10)])
    rows = [f"l{i},NaN" for i in range(10)] + [f"u{i},句子" for i in range(10)]
    _write(root / "tr.csv", ["name,chinese", *rows])
    folders = {"labeled": root / "labeled", "unlabeled": root / "unlabeled"}
    with caplog.at_level(logging.WARNING, logger="mersemi.inventory"):
        update_inventory(root / "inv", folders, 2, root / "tr.csv")
    assert "covers 0/10 labeled clips but 10/10 unlabeled and test clips" in caplog.text
