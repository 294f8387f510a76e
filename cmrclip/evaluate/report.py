"""One self-contained HTML report: text, tables and images (embedded as base64), no scripts, no external resources.

Other jobs (the demo) call :func:`build_html_report` with their own sections::

    build_html_report("cmrclip demo", [
        ReportSection("Data", text="12 synthetic studies ..."),
        ReportSection("Metrics", table=df),
        ReportSection("Plots", images=[Path("roc.png"), ReportImage(Path("ba.png"), caption="Bland-Altman")]),
    ], out_dir / "report.html")

A section may also be a plain dict with the same keys (``title``, ``text``, ``table``, ``images``, ``code``).
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cmrclip.errors import DataError

__all__ = ["ReportImage", "ReportSection", "build_html_report"]

logger = logging.getLogger(__name__)

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #444}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}.note{color:#555;font-size:.85em}
"""


@dataclass(frozen=True)
class ReportImage:
    """An image to embed: a file path (PNG, JPEG, GIF, SVG) or raw PNG/JPEG/GIF bytes, with an optional caption."""

    source: Path | bytes
    caption: str = ""


@dataclass(frozen=True)
class ReportSection:
    """A titled part of the report; every field but ``title`` is optional and they render in this order."""

    title: str
    text: str | None = None
    table: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None
    images: Sequence[ReportImage | Path | bytes] = field(default_factory=tuple)
    code: str | None = None


def _data_uri(image: ReportImage) -> str:
    if isinstance(image.source, bytes):
        data = image.source
        mime = next((m for magic, m in _MAGIC if data.startswith(magic)), None)
        if mime is None:
            raise DataError("report image bytes are not PNG, JPEG or GIF; pass a file path or PNG bytes")
    else:
        path = Path(image.source)
        mime = _MIME.get(path.suffix.lower())
        if mime is None:
            raise DataError(f"report image {path}: unsupported type {path.suffix!r}; use {sorted(_MIME)}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"report image {path} cannot be read: {exc}") from exc
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _text(text: str) -> str:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return '<td class="num"></td>' if math.isnan(value) else f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(table: pd.DataFrame | Sequence[Mapping[str, Any]]) -> str:
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(_cell(v.item() if hasattr(v, "item") else v) for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(item: ReportImage | Path | bytes) -> str:
    image = item if isinstance(item, ReportImage) else ReportImage(item)
    caption = image.caption or (Path(image.source).name if not isinstance(image.source, bytes) else "")
    alt = html.escape(caption or "figure", quote=True)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{_data_uri(image)}" alt="{alt}">{cap}</figure>'


def _section(section: ReportSection | Mapping[str, Any]) -> str:
    if isinstance(section, Mapping):
        try:
            section = ReportSection(**section)
        except TypeError as exc:
            raise DataError(f"report section {dict(section).get('title')!r}: {exc}; see ReportSection") from exc
    parts = [f"<section><h2>{html.escape(section.title)}</h2>"]
    if section.text:
        parts.append(_text(section.text))
    if section.table is not None:
        parts.append(_table(section.table))
    parts += [_image(item) for item in section.images]
    if section.code:
        parts.append(f"<pre>{html.escape(section.code)}</pre>")
    parts.append("</section>")
    return "".join(parts)


def build_html_report(
    title: str, sections: Sequence[ReportSection | Mapping[str, Any]], out_path: Path, subtitle: str = ""
) -> Path:
    """Write one self-contained HTML file (inline CSS, images as base64 data URIs, no scripts) and return its path.

    Raises:
        DataError: if an image cannot be read or is of an unsupported type, or a section dict has unknown keys.
    """
    body = "".join(_section(s) for s in sections)
    sub = f'<p class="note">{html.escape(subtitle)}</p>' if subtitle else ""
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{sub}{body}</body></html>"
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    logger.info("wrote %s (%d bytes)", out_path, len(page))
    return out_path
