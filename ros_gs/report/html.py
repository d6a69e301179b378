"""A static HTML page of sections holding figures (PNG, embedded) and tables.

Why not a templating library or a notebook: the page must open from disk with no server and no
network, in any browser, years later; a few lines of escaped HTML with base64 PNGs do that.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np


@dataclass
class Figure:
    title: str
    png: bytes  # the encoded image
    caption: str = ""

    @classmethod
    def from_array(cls, title: str, rgb: np.ndarray, caption: str = "") -> "Figure":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
        return cls(title, buf.getvalue(), caption)

    @classmethod
    def from_matplotlib(cls, title: str, fig: Any, caption: str = "") -> "Figure":
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return cls(title, buf.getvalue(), caption)


@dataclass
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass
class Section:
    title: str
    items: list[Union[Figure, Table, str]] = field(default_factory=list)  # str: a paragraph


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top;font-size:.9em}th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}p.note{color:#555;font-size:.9em}"""


def _item(item: Union[Figure, Table, str]) -> str:
    e = html.escape
    if isinstance(item, Figure):
        data = base64.b64encode(item.png).decode("ascii")
        cap = f"<figcaption>{e(item.caption)}</figcaption>" if item.caption else ""
        return f'<figure><h3>{e(item.title)}</h3><img alt="{e(item.title)}" src="data:image/png;base64,{data}">{cap}</figure>'
    if isinstance(item, Table):
        head = "".join(f"<th>{e(str(h))}</th>" for h in item.header)
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in item.rows)
        return f"<h3>{e(item.title)}</h3><table><tr>{head}</tr>{body}</table>"
    return f'<p class="note">{e(item)}</p>'


def write_html(path: Path | str, title: str, sections: list[Section], subtitle: str = "") -> Path:
    """Write the page; it appears whole or not at all (written beside, then renamed)."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>", f'<p class="note">{e(subtitle)}</p>' if subtitle else ""]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        parts += [_item(i) for i in s.items]
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return path
