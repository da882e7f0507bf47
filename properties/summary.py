"""The conformance summary: records folded into a table of component × E-id."""
from __future__ import annotations

from collections import defaultdict

from spec import CATALOGUE

ORDER = {eid: n for n, eid in enumerate(CATALOGUE)}
RANK = {"fail": 0, "stale": 1, "xfail": 2, "pass": 3, "skip": 4}


def table(records: list[dict]) -> list[tuple[str, str, str]]:
    """(component, E-id, verdict) rows; a verdict is the worst status of the checks on that E-id,
    with the failing checks named and the variant, if the subject declared one."""
    cells = defaultdict(list)
    for r in records:
        for eid in r["eids"] or ["-"]:
            cells[r["component"], eid].append(r)
    rows = []
    for (component, eid), found in sorted(cells.items(), key=lambda kv: (kv[0][0], ORDER.get(kv[0][1], 999))):
        worst = min(found, key=lambda r: RANK[r["status"]])["status"]
        verdict = worst
        if worst in ("fail", "xfail", "stale"):
            verdict += " (" + ", ".join(sorted({r["check"] for r in found if r["status"] == worst})) + ")"
        variant = next((r["variant"] for r in found if r["variant"]), "")
        if variant and worst != "skip":
            verdict = f"variant {variant}: {verdict}"
        rows.append((component, eid, verdict))
    return rows


def format_table(rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows + [("component", "E-id", "")]) for i in range(2)]
    lines = [f"{'component':<{widths[0]}}  {'E-id':<{widths[1]}}  verdict"]
    lines += [f"{c:<{widths[0]}}  {e:<{widths[1]}}  {v}" for c, e, v in rows]
    return lines


def observations(records: list[dict]) -> list[str]:
    """What the subject did where the spec leaves the value open (a query with no key visible)."""
    seen = {}
    for r in records:
        if r["status"] == "pass" and r["message"].startswith("observed: "):
            options = "".join(f", {k}={v}" for k, v in r["options"].items())
            seen[f"{r['component']}{options}"] = r["message"].removeprefix("observed: ")
    return [f"{where}: {what}" for where, what in sorted(seen.items())]
