"""Source files as pages of the site, one anchor per line (#L12), so that the site links to the
reference code and the checks without leaving itself."""
from __future__ import annotations

import html
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def page_name(path: str) -> str:
    """Where the page for a repository file lies inside the site."""
    return f"source/{path}.html"


def write(path: str, out: pathlib.Path) -> None:
    lines = (ROOT / path).read_text().splitlines()
    rows = "\n".join(f'<span id="L{n}" class="line"><a href="#L{n}">{n:>4}</a>  {html.escape(text)}</span>'
                     for n, text in enumerate(lines, 1))
    depth = "../" * (path.count("/") + 1)
    target = out / page_name(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(path)} · nlpspec</title>
<link rel="stylesheet" href="{depth}style.css"></head>
<body><header><a href="{depth}index.html">nlpspec</a> · <code>{html.escape(path)}</code></header>
<pre class="source">{rows}</pre></body></html>
""")
