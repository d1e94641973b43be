"""The one reader of label files (image names and scores), as spreadsheets in any locale save them.

Every tool reads label tables through :func:`read_label_file`: the dataset loaders (label,
prompt and split files), ``score.py --labels`` and the scorer API. It accepts:

- encodings: UTF-8 with or without a byte-order mark, UTF-16/UTF-32 with a byte-order mark
  (Excel's "Unicode text"), UTF-16 without one, and Windows-1252 / Latin-1 (Excel's "CSV" in
  Western locales) when the bytes are not UTF-8;
- delimiters: ``,`` ``;`` (Excel in locales with a decimal comma) tab and ``|``, found from the
  header line; an Excel ``sep=;`` first line; quoted fields; CRLF, LF or CR line ends;
- header cells with surrounding spaces or invisible characters (byte-order mark, zero-width or
  no-break spaces), and in another letter case than expected (``Name`` for ``name``);
- empty lines and rows of empty cells (what spreadsheets leave below the data), empty trailing
  cells;
- Excel workbooks (``.xlsx``/``.xlsm``, the first sheet or a named one; needs ``openpyxl``).

Numbers are parsed by :func:`parse_number`, which also accepts a decimal comma (``3,25``).
A file that still cannot be read raises :class:`LabelFileError` with one message in plain words:
the likely cause, the line, what was expected. Names in messages go through ``errors.shown``, so
invisible characters appear as escapes (``'\\ufeffname'``).
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from .errors import UserError, shown

__all__ = ["LabelFileError", "read_label_file", "parse_number", "EXCEL_SUFFIXES"]

_DELIMITERS = (",", ";", "\t", "|")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\xa0\u202f"
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig", "UTF-8 with byte-order mark"),
         (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"), (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"),
         (b"\xff\xfe", "utf-16", "UTF-16"), (b"\xfe\xff", "utf-16", "UTF-16"))
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")
_IMAGE_NAME = re.compile(r"\.(jpe?g|png|bmp|webp|tiff?|gif)$", re.IGNORECASE)


class LabelFileError(UserError, ValueError):
    """A label file cannot be read; the message names the file, the cause and the line."""


def parse_number(cell: object) -> float:
    """A score cell as float: surrounding (also no-break) spaces ignored, ``3,25`` read as 3.25.

    An empty cell gives NaN (the caller decides whether that is allowed); anything else that is
    not a number raises ``ValueError``.
    """
    text = str(cell).strip(" \t\r\n" + _INVISIBLE) if cell is not None else ""
    if not text:
        return float("nan")
    if _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    return float(text)


def read_label_file(path: str | os.PathLike, columns: Sequence[str],
                    what: str = "label file", sheet: str = "") -> pd.DataFrame:
    """Read a label file into a ``DataFrame`` of str cells (verbatim, no NA conversion).

    ``columns`` must be present (matched after trimming spaces and invisible characters, then
    ignoring letter case); they are renamed to exactly these names. Short rows are padded with
    "" and rows of empty cells dropped. ``df.attrs`` holds ``encoding``, ``delimiter`` and
    ``lines`` (the 1-based file line of each data row, for messages). ``what`` names the file
    kind in messages ("label file", "prompt file"); ``sheet`` the sheet of a workbook ("" = the
    first; messages about a workbook name its sheet). Raises :class:`LabelFileError`.
    """
    path = Path(path)
    if not path.is_file():
        kind = "a folder, not a file" if path.is_dir() else "not found"
        raise LabelFileError(f"{what} {path} is {kind}")
    raw = path.read_bytes()
    workbook = "xlsx" if path.suffix.lower() in EXCEL_SUFFIXES else _workbook_kind(raw)
    place = str(path)
    if workbook == "xlsx":
        rows, chosen = _xlsx_rows(path, what, sheet)
        lines, encoding, delimiter, place = None, "xlsx", "", f"{path}, sheet {chosen!r},"
    elif workbook:
        raise LabelFileError(f"{what} {path} is an old Excel workbook ({workbook}); save it as "
                             "CSV UTF-8 or .xlsx")
    else:
        text, encoding = _decode(raw, path, what)
        try:
            rows, lines, delimiter = _csv_rows(text, columns)
        except csv.Error as exc:
            raise LabelFileError(f"{what} {path}: {exc}") from None
    return _table(rows, lines, columns, place, what, encoding, delimiter)


def _workbook_kind(raw: bytes) -> Optional[str]:
    if raw.startswith(b"PK\x03\x04") and b"xl/" in raw[:4096]:
        return "xlsx"
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return ".xls"
    return None


def _decode(raw: bytes, path: Path, what: str) -> tuple[str, str]:
    """Text of the file and the encoding that produced it (see the module doc)."""
    if not raw.strip():
        raise LabelFileError(f"{what} {path} is empty")
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec), name
            except UnicodeDecodeError as exc:
                raise LabelFileError(f"{what} {path} starts with a {name} byte-order mark but is "
                                     f"not valid {name} (byte {exc.start}); save it again as "
                                     "CSV UTF-8") from None
    head = raw[:4096]
    if head.count(b"\x00") > len(head) // 4:  # UTF-16 without byte-order mark
        codec = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        try:
            return raw.decode(codec), codec.upper()
        except UnicodeDecodeError:
            raise LabelFileError(f"{what} {path} is a binary file, not a text (CSV) file") \
                from None
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "Latin-1"


def _clean(cell: str) -> str:
    return cell.strip(" \t\r\n" + _INVISIBLE)


def _csv_rows(text: str, columns: Sequence[str]) -> tuple[list[list[str]], list[int], str]:
    """Rows of the CSV text (header first), the file line of each row and the delimiter."""
    lines = text.splitlines()
    skip = 0
    declared = None
    while skip < len(lines) and not _clean(lines[skip]):
        skip += 1
    if skip < len(lines) and re.fullmatch(r'"?sep=(.)"?', _clean(lines[skip]), re.IGNORECASE):
        declared = re.fullmatch(r'"?sep=(.)"?', _clean(lines[skip]), re.IGNORECASE).group(1)
        skip += 1
    header = lines[skip] if skip < len(lines) else ""
    delimiter = declared or _guess_delimiter(header, columns)
    reader = csv.reader(io.StringIO("\n".join(lines[skip:])), delimiter=delimiter)
    rows, line_numbers = [], []
    line = skip
    try:
        for row in reader:
            rows.append(row)
            line_numbers.append(line + 1)
            line = skip + reader.line_num
    except csv.Error as exc:
        raise csv.Error(f"line {skip + reader.line_num}: {exc}") from None
    return rows, line_numbers, delimiter


def _guess_delimiter(header: str, columns: Sequence[str]) -> str:
    """The delimiter whose split of the header holds the wanted columns (else, or with no
    wanted columns, the one giving the most cells)."""
    wanted = {c.lower() for c in columns}
    best, best_cells = ",", 0
    for delimiter in _DELIMITERS:
        cells = [_clean(c).lower() for c in next(csv.reader([header], delimiter=delimiter), [])]
        if wanted and wanted <= set(cells):
            return delimiter
        if len(cells) > best_cells:
            best, best_cells = delimiter, len(cells)
    return best


def _xlsx_rows(path: Path, what: str, sheet: str) -> tuple[list[list[str]], str]:
    """Cells of the worksheet ``sheet`` ("" = the first) as text (numbers as their shortest
    repr), and the sheet's name."""
    try:
        import openpyxl
    except ImportError:
        raise LabelFileError(f"{what} {path} is an Excel workbook (.xlsx): install openpyxl "
                             "(pip install openpyxl) or save it as CSV UTF-8") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile / XML errors of a damaged workbook
        raise LabelFileError(f"cannot read {what} {path} as an Excel workbook (damaged?): "
                             f"{type(exc).__name__}: {exc}") from None
    try:
        names = list(book.sheetnames)
        if sheet and sheet not in names:
            raise LabelFileError(f"{what} {path} has no sheet {sheet!r}; its sheets are {names}")
        chosen = sheet or names[0]
        return [["" if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in row]
                for row in book[chosen].iter_rows(values_only=True)], chosen
    finally:
        book.close()


def _table(rows: list[list[str]], lines: Optional[list[int]], columns: Sequence[str], path: str,
           what: str, encoding: str, delimiter: str) -> pd.DataFrame:
    """The text table of ``rows``; ``path`` is the file as messages name it (a workbook's ends in
    ``, sheet 'S',``)."""
    lines = lines or list(range(1, len(rows) + 1))
    kept = [(row, line) for row, line in zip(rows, lines) if any(_clean(c) for c in row)]
    if not kept:
        raise LabelFileError(f"{what} {path} has no header row (it holds only empty lines)")
    (header, header_line), data = kept[0], kept[1:]
    names = _header_names(header, columns, path, what, delimiter)
    width = len(names)
    cells = []
    for row, line in data:
        if len(row) > width:
            extra = row[width:]
            if any(_clean(c) for c in extra):
                sep = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
                raise LabelFileError(
                    f"{what} {path.rstrip(',')}, line {line}: {len(row)} values but the header has {width} "
                    f"columns; a value holding a {sep} must be in double quotes "
                    f"(first extra value {shown(extra[0])})")
            row = row[:width]
        cells.append(row + [""] * (width - len(row)))
    table = pd.DataFrame(cells, columns=names, dtype=object) if cells else \
        pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    table = table.astype(str) if cells else table
    table.attrs.update(encoding=encoding, delimiter=delimiter,
                       lines=[line for _, line in data], header_line=header_line)
    return table


def _header_names(header: list[str], columns: Sequence[str], path: str, what: str,
                  delimiter: str) -> list[str]:
    """Cleaned header cells, the wanted ``columns`` renamed to their exact spelling."""
    names = [_clean(c) for c in header]
    for column in columns:
        if column in names:
            continue
        same = [i for i, n in enumerate(names) if n.lower() == column.lower()]
        if len(same) == 1:
            names[same[0]] = column
    missing = [c for c in columns if c not in names]
    if missing:
        raise LabelFileError(f"{what} {path} lacks column(s) {missing}; it has columns "
                             f"[{', '.join(shown(h) for h in header)}]{_header_hint(header, delimiter)}")
    duplicated = sorted({c for c in columns if names.count(c) > 1})
    if duplicated:
        raise LabelFileError(f"{what} {path.rstrip(',')}: column(s) {duplicated} appear more than once in "
                             "the header; keep one of each")
    return names


def _header_hint(header: list[str], delimiter: str) -> str:
    """The likely cause of a header without the wanted columns, in words."""
    first = _clean(header[0]) if header else ""
    if _IMAGE_NAME.search(first) or _is_number(first):
        return ("; the first line looks like data: add a header line naming the columns "
                "(e.g. name,mos) at the top")
    if len(header) == 1:
        return ("; the header is one single column: separate the columns with commas, "
                "semicolons or tabs")
    return ""


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return bool(text)
