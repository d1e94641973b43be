"""Convert AIGCIQA2023's MATLAB MOS files to ``name,mos`` CSV files, all tasks at once.

    python mat2csv.py --mos-dir ROOT/AIGCIQA2023/MOS --out-dir ROOT/AIGCIQA2023

reads ``mosz1.mat`` (quality), ``mosz2.mat`` (authenticity) and ``mosz3.mat`` (correspondence),
each holding a variable ``MOSz`` of shape (N, 1), and writes ``mos_quality.csv``,
``mos_authenticity.csv`` and ``mos_correspondence.csv`` with one row per image ``i.png``
(i = 0 .. N-1). Values are written with Python's shortest round-trip repr, so reading the CSV
back yields exactly the floats of the ``.mat``. Files are written atomically (temporary file,
then rename). Missing ``.mat`` files are reported and skipped; exit status 2 when none exists
or one cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

# Where the MOS files are when mat2csv.py runs without --mos-dir from the AIGCIQA2023 root: the
# layout this project documents, then the release archive's.
DEFAULT_MOS_DIRS = (Path("MOS"), Path("DATA") / "MOS")


def conversions() -> list[tuple[str, str]]:
    """``(input .mat name, output CSV name)`` per task, in the database's numbering (mosz1 ..).

    Taken from the AIGCIQA2023 loader, so the files written are the ones it looks for.
    """
    # Deferred: importing the datasets package loads dassl and torch (seconds), which --help
    # and argument errors should not pay for.
    from datasets.aigciqa2023 import TASK_MAT_INDEX, mos_sources

    pairs = []
    for task in sorted(TASK_MAT_INDEX, key=TASK_MAT_INDEX.get):
        mat_names, csv_names = mos_sources(task)
        pairs.append((Path(mat_names[0]).name, csv_names[0]))
    return pairs


def convert(mat_path: Path, csv_path: Path) -> int:
    """Write ``csv_path`` (columns ``name,mos``) from ``mat_path``; return the row count.

    Raises ``datasets.DatasetError`` for an unreadable file or a missing/malformed ``MOSz``.
    """
    # Deferred for the same reason as in conversions().
    from dassl.utils import atomic_write_text
    from datasets.labels import read_mat_table

    table = read_mat_table(mat_path)
    lines = ["name,mos"] + [f"{n},{float(m)!r}" for n, m in zip(table["name"], table["mos"])]
    atomic_write_text(str(csv_path), "\n".join(lines) + "\n")
    return len(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mat2csv.py",
        description="Convert AIGCIQA2023 MOS/mosz{1,2,3}.mat (variable MOSz, shape (N, 1)) into "
                    "mos_quality.csv, mos_authenticity.csv and mos_correspondence.csv "
                    "(columns name,mos; rows 0.png .. N-1.png) for the AIGCIQA2023 loader.",
    )
    parser.add_argument("mos_dir_pos", nargs="?", type=Path, metavar="MOS_DIR",
                        help="same as --mos-dir")
    parser.add_argument("out_dir_pos", nargs="?", type=Path, metavar="OUT_DIR",
                        help="same as --out-dir")
    # Defaults = the original usage: run from the AIGCIQA2023 root, read ./MOS, write here.
    parser.add_argument("--mos-dir", type=Path, default=None,
                        help="folder holding mosz1.mat / mosz2.mat / mosz3.mat "
                             "(e.g. ROOT/AIGCIQA2023/MOS; default ./MOS, else ./DATA/MOS as the "
                             "release unpacks)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="folder to write the CSV files into (e.g. ROOT/AIGCIQA2023, "
                             "where the loader looks for them; default: the current folder); "
                             "created if missing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the conversion; return the process exit status (0 = at least one file written, 2 =
    bad input, reported as one ``error:`` line as by train.py and score.py)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("mos_dir", "out_dir"):
        flag, positional = getattr(args, name), getattr(args, name + "_pos")
        if flag is not None and positional is not None and flag != positional:
            parser.error(f"--{name.replace('_', '-')} and the positional {name.upper()} disagree")
        setattr(args, name, flag or positional)
    # Deferred for the same reason as in conversions().
    from dassl.utils import USER_ERRORS, report_user_error

    try:
        return convert_all(args.mos_dir, args.out_dir or Path("."))
    except USER_ERRORS as exc:
        return report_user_error(exc)


def convert_all(mos_dir: Path | None, out_dir: Path) -> int:
    """Convert every task's ``.mat`` of ``mos_dir`` (None: ``DEFAULT_MOS_DIRS``) into
    ``out_dir``; return 0. Raises ``InputError`` when there is no MOS folder or no ``.mat`` in
    it and ``DatasetError`` for an unreadable file."""
    from dassl.utils import InputError, shown

    if mos_dir is None:
        # Run from the AIGCIQA2023 root: ./MOS, or ./DATA/MOS as the release archive unpacks.
        mos_dir = next((p for p in DEFAULT_MOS_DIRS if p.is_dir()), DEFAULT_MOS_DIRS[0])
        if not mos_dir.is_dir():
            raise InputError(f"no MOS folder here: looked for "
                             f"{' and '.join(map(str, DEFAULT_MOS_DIRS))} in the current folder; "
                             "pass --mos-dir")
    if not mos_dir.is_dir():
        raise InputError(f"the MOS folder {shown(mos_dir)} is not a folder")
    pairs = conversions()
    written, missing = 0, []
    for mat_name, csv_name in pairs:
        mat_path = mos_dir / mat_name
        if not mat_path.is_file():
            missing.append(mat_name)
            continue
        try:
            rows = convert(mat_path, out_dir / csv_name)
        except OSError as exc:  # the output folder cannot be made or written
            raise InputError(f"cannot write {shown(out_dir / csv_name)}: {exc.strerror or exc}") \
                from exc
        print(f"wrote {out_dir / csv_name} ({rows} rows) from {mat_path}")
        written += 1
    if missing:
        print(f"missing in {shown(mos_dir)}, skipped: {', '.join(missing)}", file=sys.stderr)
    if not written:
        raise InputError(f"none of {[m for m, _ in pairs]} found in {shown(mos_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
