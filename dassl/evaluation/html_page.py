"""Building blocks of the offline HTML reports (a run's and a sweep's ``report.html``).

A page is one self-contained file: inline CSS, figures and thumbnails embedded as ``data:``
PNG/JPEG URIs, no script and nothing fetched, so it opens from disk with no server and no
network. Numbers are shown rounded and carry their exact value in ``data-value`` (``repr`` of
the float, ``"null"`` for a missing one) so a reader (or a test) can parse them.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Iterable, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import finite_or_none

__all__ = ["escape", "number", "table", "figure_img", "png_file_img", "thumbnail_img", "page",
           "link"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td.t,th.t{text-align:left}
.note{color:#555;font-style:italic}.figs img{max-width:49%;vertical-align:top}
.thumbs{display:flex;flex-wrap:wrap;gap:.8em}.thumbs figure{margin:0;width:160px;
font-size:.85em}.thumbs img{max-width:160px;max-height:160px;display:block}
"""


def escape(text: Any) -> str:
    """HTML-escaped ``str(text)``."""
    return html.escape(str(text), quote=True)



def number(value: Any, digits: int = 4, kind: str = "") -> str:
    """A ``<span class="num">`` showing ``value`` to ``digits`` decimals ("n/a" when missing or
    not finite) with the exact value in ``data-value`` and, when given, ``data-kind``."""
    finite = finite_or_none(value)
    shown = "n/a" if finite is None else f"{finite:.{digits}f}"
    exact = "null" if finite is None else repr(finite)
    kind_attr = f' data-kind="{escape(kind)}"' if kind else ""
    return f'<span class="num" data-value="{exact}"{kind_attr}>{shown}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1,
          table_id: str = "") -> str:
    """An HTML table; ``headers`` are escaped, cells are HTML already (use ``escape`` or
    ``number``); the first ``text_columns`` columns are left-aligned."""
    def cls(i: int) -> str:
        return ' class="t"' if i < text_columns else ""

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
                   + "</tr>" for row in rows)
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_img(fig: Figure, alt: str, dpi: int = 90) -> str:
    """``<img>`` of a matplotlib figure as an embedded PNG (Agg canvas, no pyplot)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return f'<img alt="{escape(alt)}" src="{_data_uri(buffer.getvalue(), "image/png")}">'


def png_file_img(path: str, alt: str) -> Optional[str]:
    """``<img>`` embedding a PNG file as it is; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return f'<img alt="{escape(alt)}" src="{_data_uri(data, "image/png")}">'


def thumbnail_img(path: str, alt: str, size: int = 160) -> Optional[str]:
    """``<img>`` of an image file shrunk to at most ``size`` pixels a side, embedded as JPEG;
    None when the file is missing or cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            thumb = image.convert("RGB")
            thumb.thumbnail((size, size))
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=80)
    return f'<img alt="{escape(alt)}" src="{_data_uri(buffer.getvalue(), "image/jpeg")}">'


def link(href: str, text: str) -> str:
    """``<a>`` to a relative ``href``."""
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """The whole document: ``title``, an ``intro`` paragraph (HTML) and ``(heading, html)``
    sections, each in a ``<section>`` whose id is derived from the heading."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{intro}</p>")
    for heading, body in sections:
        ident = "-".join(heading.lower().split())
        parts.append(f'<section id="{escape(ident)}"><h2>{escape(heading)}</h2>{body}'
                     "</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
