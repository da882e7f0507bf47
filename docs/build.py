"""Build the documentation site from spec/: `python -m nlpspec.docs [--out site] [--report R.json …] [--no-quick] [--long]`.

Offline; every equation, figure and diagram is generated from the spec's objects and oracles.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re

from nlpspec.spec import CATALOGUE, Equation

from . import catalogue, conformance, diagrams, figures, guide, pages, pictures, prose, source

SECTION_FIGURES = {  # page -> figure functions, in the order shown
    "recurrent-cells": (figures.gates, figures.gradient_norms),
    "attention": (figures.positional_encoding, figures.causal_attention, figures.rnn_against_attention),
}
LONG = (16, 64, 256, 1024, 4096, 8192)  # --long: the timing figure up to 8192 positions


def build(out: pathlib.Path, reports=(), long: bool = False, quick: bool = True) -> list[pathlib.Path]:
    """Write the site into `out`; return the pages written. The conformance page shows `reports`, else
    those .ci/run wrote (conformance.REPORTS), and with `quick` a quick run of every built-in subject
    none of them covers (its report kept in out/reports/)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    (out / "style.css").write_text(pages.STYLE)
    reports = conformance.gathered(reports, out / "reports") if quick else [pathlib.Path(r) for r in reports]
    runs = [json.loads(path.read_text()) for path in reports]  # who implements what, as the site says it
    diagram_files = {eid: f"figures/{diagrams.draw(eq, out / 'figures')}" for eid, eq in CATALOGUE.items()
                     if isinstance(eq, Equation)}
    refs = catalogue.reference_code()
    shown, measured = {}, {}
    for page, functions in pictures.PAGE_FIGURES.items():  # the article's pictures, drawn from the spec
        shown[page] = []
        for make in functions:
            name, caption = make(out / "figures")
            shown[page].append((f"figures/{name}", caption, make.eids))
    for page, functions in SECTION_FIGURES.items():
        shown.setdefault(page, [])
        for make in functions:
            kwargs = {"lengths": LONG} if long and make is figures.rnn_against_attention else {}
            name, caption, *found = make(out / "figures", **kwargs)
            shown[page].append((f"figures/{name}", caption, ()))
            measured[make.__name__] = found[0] if found else {}
    written = []
    for page, _, _, _ in catalogue.SECTIONS:
        written.append(out / f"{page}.html")
        written[-1].write_text(pages.section_page(page, refs, runs, diagram_files, shown.get(page, []),
                                                        prose.section(page, measured)))
    written.append(out / "index.html")
    written[-1].write_text(pages.index_page([f for f in shown["attention"] if "positional_encoding" in f[0]]))
    written.append(out / "conformance.html")
    written[-1].write_text(conformance.page(reports))
    written += guide.write(out)
    for path in sorted({m for p in written for m in re.findall(r'href="(source/[^"#]+)\.html', p.read_text())}):
        source.write(path.removeprefix("source/"), out)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nlpspec.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="site", help="where to write the site (default: site/)")
    parser.add_argument("--report", action="append", default=[], help="an --nlpspec-report JSON file (repeatable)")
    parser.add_argument("--no-quick", action="store_true", help="no quick runs of the built-in subjects that no "
                        "report covers: the conformance page shows the reports alone")
    parser.add_argument("--long", action="store_true", help="time RNN against self-attention up to 8192 positions")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    written = build(out, args.report, args.long, quick=not args.no_quick)
    print(f"wrote {len(written)} pages to {args.out}/ (entry: {args.out}/index.html)")


if __name__ == "__main__":
    main()
