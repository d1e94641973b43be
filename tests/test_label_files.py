"""One label-file reader for every tool (dassl.utils.label_file): the same table from every
encoding, delimiter and spreadsheet quirk real users' files have, and plain-word messages."""
from __future__ import annotations

import math

import pandas as pd
import pytest

import score
from dassl.utils.label_file import LabelFileError, parse_number, read_label_file
from datasets.agiqa import load_agiqa
from datasets.core import read_options
from datasets.labels import read_label_table
from datasets.prompts import read_prompt_file
from trainers.inference.scorer import training_score_range

from conftest import AGIQA_YAML

NAMES = ["café_1.png", "b, with comma.png", "c.png"]
MOS = [3.25, 0.5, 41.0]


def comma_csv() -> str:
    return "name,mos\n" + "".join(f'"{n}",{m!r}\n' for n, m in zip(NAMES, MOS))


def semicolon_decimal_comma() -> str:  # Excel "CSV" in a German or French locale
    return "name;mos\n" + "".join(f"{n};{str(m).replace('.', ',')}\n" for n, m in zip(NAMES, MOS))


VARIANTS = {
    "utf8_bom": (comma_csv(), "utf-8-sig"),
    "utf16_tab_bom": (comma_csv().replace(",", "\t").replace('"b\t with comma.png"',
                                                              "b, with comma.png"), "utf-16"),
    "utf16_le_no_bom": (comma_csv(), "utf-16-le"),
    "cp1252_semicolon_decimal_comma_crlf": (semicolon_decimal_comma().replace("\n", "\r\n"),
                                            "cp1252"),
    "excel_sep_line": ("sep=;\n" + semicolon_decimal_comma(), "utf-8"),
    "padded_header_and_empty_rows": (
        comma_csv().replace("name,mos", " Name , MOS\u00a0") + ",\n,\n\n", "utf-8"),
    "zero_width_space_header": (comma_csv().replace("name", "\u200bname", 1), "utf-8"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_reads_as_the_same_table(tmp_path, variant):
    text, encoding = VARIANTS[variant]
    path = tmp_path / "labels.csv"
    path.write_bytes(text.encode(encoding))
    table = read_label_file(path, ("name", "mos"))
    assert table["name"].tolist() == NAMES
    assert [parse_number(c) for c in table["mos"]] == MOS
    # The dataset reader, score.py --labels and the scorer's range read it the same way.
    labelled = read_label_table(path, "mos")
    assert labelled["name"].tolist() == NAMES and labelled["mos"].tolist() == MOS
    assert score.read_labels(str(path)) == dict(zip(NAMES, MOS))


def test_xlsx_first_sheet_reads_like_the_csv(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["name", "mos"])
    for name, mos in zip(NAMES, MOS):
        book.active.append([name, mos])
    book.save(tmp_path / "labels.xlsx")
    assert score.read_labels(str(tmp_path / "labels.xlsx")) == dict(zip(NAMES, MOS))


def test_score_labels_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "mos.csv"
    path.write_bytes("name,mos\nx.png,1.5\ny.png,2\n".encode("utf-8-sig"))
    assert score.read_labels(str(path)) == {"x.png": 1.5, "y.png": 2.0}


def test_split_file_range_uses_the_same_reader(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.csv").write_bytes(
        "name;mos\r\na.png;1,5\r\nb.png;4\r\n".encode("utf-8-sig"))
    assert training_score_range(str(tmp_path)) == (1.5, 4.0)


def test_agiqa_loader_reads_an_excel_export(tiny_data, tmp_path):
    """data.csv re-saved by Excel in a German locale: Windows-1252, ';', decimal commas, CRLF."""
    from train import base_cfg

    path = tiny_data / "AGIQA-3K" / "data.csv"
    original = pd.read_csv(path, dtype=str, keep_default_na=False)
    german = original.copy()
    for column in ("mos_quality", "mos_align", "std_quality", "std_align"):
        german[column] = german[column].str.replace(".", ",", regex=False)
    path.write_bytes(german.to_csv(index=False, sep=";", lineterminator="\r\n")
                     .encode("cp1252"))
    cfg = base_cfg()
    cfg.merge_from_file(AGIQA_YAML)
    cfg.DATASET.ROOT = str(tiny_data)
    data = load_agiqa(read_options(cfg))
    loaded = pd.concat(data.parts.values())
    expected = dict(zip(original["name"], original["mos_quality"].astype(float)))
    assert len(loaded) == len(original)
    assert all(expected[n] == m for n, m in zip(loaded["name"], loaded["mos"]))


# ------------------------------------------------------------------------- messages
def test_missing_columns_message_shows_invisible_characters_and_the_cause(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("file\u00a0name,quality\na.png,1\n")
    with pytest.raises(LabelFileError) as info:
        read_label_file(path, ("name", "mos"))
    message = str(info.value)
    assert "lacks column(s) ['name', 'mos']" in message and "'file\\xa0name'" in message
    path.write_text("a.png,1\nb.png,2\n")
    with pytest.raises(LabelFileError, match="the first line looks like data: add a header"):
        read_label_file(path, ("name", "mos"))


def test_stray_delimiter_names_the_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("name,mos\na.png,1\nb, c.png,2\n")
    with pytest.raises(LabelFileError, match=r"line 3: 3 values but the header has 2 columns; "
                                             r"a value holding a comma must be in double quotes"):
        read_label_file(path, ("name", "mos"))


def test_bad_score_names_the_line_and_what_was_expected(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("name,mos\n\na.png,1\nb.png,high\n")
    with pytest.raises(LabelFileError, match=r"line 4: mos high of b.png is not a number"):
        score.read_labels(str(path))
    from datasets.errors import DatasetError
    with pytest.raises(DatasetError, match=r"not numeric at data row 1 \(line 4\)"):
        read_label_table(path, "mos")


@pytest.mark.parametrize("content, cause", [
    (b"", "is empty"), (b"\xd0\xcf\x11\xe0" + b"\x00" * 60, "old Excel workbook"),
])
def test_unreadable_files_say_why(tmp_path, content, cause):
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(LabelFileError, match=cause):
        read_label_file(path, ("name", "mos"))


def test_prompt_file_uses_the_same_reader(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_bytes("\ufeffName;Prompt\r\n0.png;a cat\r\n1.png;a dog\r\n".encode("utf-8"))
    table = read_prompt_file(path)
    assert table.to_dict("list") == {"name": ["0.png", "1.png"], "prompt": ["a cat", "a dog"]}


def test_parse_number():
    assert parse_number(" 3,25\u00a0") == 3.25 and parse_number("-1e3") == -1000.0
    assert math.isnan(parse_number(""))
    with pytest.raises(ValueError):
        parse_number("1,2,3")
