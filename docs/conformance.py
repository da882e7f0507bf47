"""The conformance page: component × subject, from `--nlpspec-report` JSON files.

The build fills it itself: the reports given (`--report`), else those `.ci/run` writes into
artefacts/reports/, and for every built-in subject still without one, a quick run of its checks
made by the build (QUICK examples each, outside pytest), each column saying which it is."""
from __future__ import annotations

import html
import json
import multiprocessing
import os
import pathlib
from concurrent.futures import ProcessPoolExecutor

from nlpspec.properties.suite import COMPONENTS
from nlpspec.properties.summary import RANK, ORDER, verdict

from .pages import layout, link_to

BUILT_IN = ("reference", "torch", "hf", "keras", "onnxruntime", "jax")
# Keras computes float64 layers' matmuls in float32, ONNX Runtime's recurrent kernels take no double, JAX's
# attention takes its softmax in float32 (docs/guide/subjects.md): their columns are float32 runs
DTYPE = {"keras": "float32", "onnxruntime": "float32", "jax": "float32"}
REPORTS = pathlib.Path("artefacts") / "reports"  # where .ci/run writes its runs' reports
QUICK = 2  # examples per check in a report the build runs itself


def quick_report(name: str, folder: pathlib.Path, examples: int = QUICK, components=None) -> pathlib.Path:
    """Run every check (of every component, or of `components`) of a built-in subject on `examples`
    examples, on the CPU, and write its report (the report of a subject that cannot be loaded, its
    extra not installed, holds the error)."""
    import torch
    from hypothesis import settings

    from nlpspec.properties.profiles import settings_for
    from nlpspec.properties.runner import check_subject
    from nlpspec.subjects import load_subject
    dtype = DTYPE.get(name, "float64")
    found = {"subject": name, "device": "cpu", "dtype": dtype, "profile": f"the site's quick run ({examples} examples)"}
    try:
        subject = load_subject(name)
        records = check_subject(subject, "cpu", getattr(torch, dtype), settings(settings_for("ci"), max_examples=examples),
                                components)
        found |= {"version": subject.version, "records": [r.as_dict() for r in records]}
    except Exception as exc:  # noqa: BLE001 -- reported on the page, as the plugin reports it
        found |= {"records": [], "error": f"{type(exc).__name__}: {exc}"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.quick.json"
    path.write_text(json.dumps(found, indent=1))
    return path


def gathered(reports, quick_folder: pathlib.Path, workers: int | None = None) -> list[pathlib.Path]:
    """The reports to show: those given, else those in REPORTS; then a quick run of each built-in
    subject that none of them covers, in `workers` processes (default: one per core)."""
    reports = [pathlib.Path(r) for r in reports] or sorted(REPORTS.glob("*.json"))
    covered = {json.loads(path.read_text()).get("subject") for path in reports}
    missing = [name for name in BUILT_IN if name not in covered]
    workers = min(len(missing), os.cpu_count() or 1) if workers is None else workers
    if workers < 2:
        return reports + [quick_report(name, quick_folder) for name in missing]
    # one process per core ("spawn": no fork of a process that runs torch's threads)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return reports + list(pool.map(quick_report, missing, [quick_folder] * len(missing)))


def cell(records: list[dict]) -> tuple[str, str]:
    """(css class, text) of one cell: the summary's verdict (properties/summary.py) over the
    component's checks, coloured by its worst status."""
    status = min(records, key=lambda r: RANK[r["status"]])["status"]
    if all("does not offer component" in r["message"] for r in records):
        return "skip", "not offered"
    if status == "pass" and any(r["variant"] for r in records):
        status = "variant"
    return {"xfail": "fail", "stale": "fail"}.get(status, status), verdict(records)


def article_place(component) -> int:
    """Where the article reaches a component: at the equation that defines its output, or at the
    last it composes (a cell at its hidden state, a seq2seq at seq.seq2seq)."""
    out = component.output_eids.get("out")
    return ORDER.get(out, 999) if out else max(ORDER.get(e, 999) for e in component.eids)


def heading(run: dict) -> str:
    how = run.get("profile") or "a pytest run"
    how = f"{how} profile" if how in ("ci", "dev", "thorough", "scale") else how
    error = f'<br><small class="fail">{html.escape(run["error"])}</small>' if run.get("error") else ""
    return (f"<th>{html.escape(run['subject'])} {html.escape(str(run.get('version', '')))}<br>"
            f"<small>{html.escape(run['device'])}, {html.escape(run['dtype'])}; {html.escape(how)}</small>{error}</th>")


def page(reports: list[pathlib.Path]) -> str:
    runs = [json.loads(path.read_text()) for path in reports]
    if not runs:
        body = ("<p>No report was given. Run <code>pytest --subject NAME --nlpspec-report NAME.json</code> for each "
                "subject, then build the site with <code>--report NAME.json</code> (repeatable).</p>")
        return layout("Conformance", body)
    rows = []
    in_article_order = sorted(COMPONENTS.items(), key=lambda kv: (article_place(kv[1]), kv[0]))
    for name, component in in_article_order:
        cells = []
        for run in runs:
            # a test that raised outside the checks (status error) fails its component's cell
            records = [r | {"status": "fail"} if r["status"] == "error" else r
                       for r in run["records"] if r["component"] == name]
            if not records:
                cells.append('<td class="skip">not run</td>')
                continue
            css, text = cell(records)
            target = component.output_eids.get("out") or component.eids[0]
            cells.append(f'<td class="{css}"><a href="{link_to(target)}">{html.escape(text)}</a></td>')
        rows.append(f"<tr><th><code>{name}</code></th>{''.join(cells)}</tr>")
    body = (f"<p>From {len(runs)} report(s): the built-in subjects, each from the run its heading names (a "
            f"profile of <code>pytest --pyargs nlpspec --subject NAME --nlpspec-report NAME.json</code>, as "
            f"<code>.ci/run</code> writes them into <code>artefacts/reports/</code>, or the site's own quick run of "
            f"{QUICK} examples per check where none was found). Each cell is the verdict over the component's checks, "
            f"naming the variant a subject was found to implement; it links to the equation the component's output "
            f"is defined by.</p>"
            f"<table><tr><th>component</th>{''.join(heading(r) for r in runs)}</tr>{''.join(rows)}</table>")
    return layout("Conformance", body)
