"""The conformance page: component × subject, from one or more `--nlpspec-report` JSON files."""
from __future__ import annotations

import html
import json
import pathlib

from nlpspec.properties.suite import COMPONENTS
from nlpspec.properties.summary import ORDER, RANK, verdict

from .pages import layout, link_to


def cell(records: list[dict]) -> tuple[str, str]:
    """(css class, text) of one cell: the summary's verdict (properties/summary.py) over the
    component's checks, coloured by its worst status."""
    status = min(records, key=lambda r: RANK[r["status"]])["status"]
    if status == "pass" and any(r["variant"] for r in records):
        status = "variant"
    return {"xfail": "fail", "stale": "fail"}.get(status, status), verdict(records)


def article_place(component) -> int:
    """Where the article reaches a component: at the equation that defines its output, or at the
    last it composes (a cell at its hidden state, a seq2seq at seq.seq2seq)."""
    out = component.output_eids.get("out")
    return ORDER.get(out, 999) if out else max(ORDER.get(e, 999) for e in component.eids)


def page(reports: list[pathlib.Path]) -> str:
    runs = [json.loads(path.read_text()) for path in reports]
    if not runs:
        body = ("<p>No report was given. Run <code>pytest --subject NAME --nlpspec-report NAME.json</code> for each "
                "subject, then build the site with <code>--report NAME.json</code> (repeatable).</p>")
        return layout("Conformance", body)
    head = "".join(f"<th>{html.escape(r['subject'])} {html.escape(str(r.get('version', '')))}<br>"
                   f"<small>{html.escape(r['device'])}, {html.escape(r['dtype'])}</small></th>" for r in runs)
    rows = []
    in_article_order = sorted(COMPONENTS.items(), key=lambda kv: (article_place(kv[1]), kv[0]))
    for name, component in in_article_order:
        cells = []
        for run in runs:
            records = [r for r in run["records"] if r["component"] == name]
            if not records:
                cells.append('<td class="skip">not run</td>')
                continue
            css, text = cell(records)
            target = component.output_eids.get("out") or component.eids[0]
            cells.append(f'<td class="{css}"><a href="{link_to(target)}">{html.escape(text)}</a></td>')
        rows.append(f"<tr><th><code>{name}</code></th>{''.join(cells)}</tr>")
    body = (f"<p>From {len(runs)} report(s). Each cell is the worst status over the component's checks; it links "
            f"to the equation the component's output is defined by.</p>"
            f"<table><tr><th>component</th>{head}</tr>{''.join(rows)}</table>")
    return layout("Conformance", body)
