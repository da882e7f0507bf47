"""The site's guide: the reference material behind README (the checks, writing a subject, the built-in
subjects and their findings, the tolerance rule, reports, the scale profile and GPUs, benchmarks, the
layout), written in Markdown under docs/guide/ and rendered into the site by markdown-it-py.

Each page is `docs/guide/NAME.md`, shown as `guide-NAME.html`; a link to `OTHER.md` (or `OTHER.md#anchor`)
becomes a link to that page.
"""
from __future__ import annotations

import html
import pathlib
import re

from markdown_it import MarkdownIt

from .pages import layout

FOLDER = pathlib.Path(__file__).parent / "guide"
ORDER = ("checks", "authoring", "subjects", "reports", "tolerance", "scale", "benchmarks", "site", "layout")


def names() -> list[str]:
    """The guide's pages, in reading order; a page under docs/guide/ that ORDER does not name comes last."""
    found = sorted(path.stem for path in FOLDER.glob("*.md"))
    return [name for name in ORDER if name in found] + [name for name in found if name not in ORDER]


def file_name(name: str) -> str:
    return f"guide-{name}.html"


def title(name: str) -> str:
    """A page's title: its first line, `# Title`."""
    return (FOLDER / f"{name}.md").read_text().split("\n", 1)[0].removeprefix("# ").strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render(name: str) -> str:
    """The page's HTML body: its Markdown (tables on), links between pages made links between the site's
    pages, every second-level heading an anchor."""
    source = (FOLDER / f"{name}.md").read_text().split("\n", 1)[1]
    body = MarkdownIt("commonmark").enable("table").render(source)
    body = re.sub(r'href="([a-z0-9_-]+)\.md(#[^"]*)?"', lambda m: f'href="{file_name(m[1])}{m[2] or ""}"', body)
    return re.sub(r"<h2>(.*?)</h2>", lambda m: f'<h2 id="{_slug(re.sub("<[^>]+>", "", m[1]))}">{m[1]}</h2>', body)


def index() -> str:
    """The guide's own index page."""
    items = "".join(f'<li><a href="{file_name(name)}">{html.escape(title(name))}</a></li>' for name in names())
    return layout("Guide", f"<p>How to use the suite, what it checks and how it judges, and what it found.</p>"
                           f"<ul>{items}</ul>")


def write(out: pathlib.Path) -> list[pathlib.Path]:
    """Write the guide's pages and its index into `out`; return them."""
    written = [out / "guide.html"]
    written[0].write_text(index())
    for name in names():
        written.append(out / file_name(name))
        written[-1].write_text(layout(title(name), render(name)))
    return written
