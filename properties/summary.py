"""The conformance summary: records folded into a table of component × E-id."""
from __future__ import annotations

from collections import defaultdict

from nlpspec.spec import CATALOGUE

ORDER = {eid: n for n, eid in enumerate(CATALOGUE)}
RANK = {"fail": 0, "stale": 1, "xfail": 2, "pass": 3, "skip": 4}


def worst(records: list[dict]) -> str:
    """The worst status of these records, with the checks that have it named if it is a failure."""
    status = min(records, key=lambda r: RANK[r["status"]])["status"]
    if status in ("fail", "xfail", "stale"):
        status += " (" + ", ".join(sorted({r["check"] for r in records if r["status"] == status})) + ")"
    return status


def options_of(records: list[dict]) -> str:
    """The subject's option sets these records ran under: 'mode=gelu' or 'mode=post_ln, seq_first'."""
    sets = sorted({",".join(f"{k}={v}" for k, v in r["options"].items()) for r in records} - {""})
    if not sets:
        return ""
    keys = {s.split("=")[0] for s in sets}
    if len(keys) == 1 and "," not in sets[0]:  # one knob: name it once
        return f"{next(iter(keys))}=" + ", ".join(s.split("=", 1)[1] for s in sets)
    return "; ".join(sets)


def verdict(records: list[dict]) -> str:
    """One verdict per variant the records ran as: the runs that match the article plainly
    ('pass'), and those of each declared variant ('variant pe.scaled_input: pass'), never merged,
    so a mode that runs a variant does not relabel the modes that do not. Where the runs split,
    each part names the option sets it covers."""
    groups = defaultdict(list)
    for r in records:
        groups[r["variant"]].append(r)
    parts = []
    for variant, found in sorted(groups.items(), key=lambda kv: (kv[0].count(",") + bool(kv[0]), kv[0])):
        # the article's own ("") first, then by the number of variants
        text = worst(found)
        if variant and not text.startswith("skip"):
            text = f"variant {variant}: {text}"
        if len(groups) > 1 and options_of(found):
            text += f" [{options_of(found)}]"
        parts.append(text)
    return "; ".join(parts)


def table(records: list[dict]) -> list[tuple[str, str, str]]:
    """(component, E-id, verdict) rows, in the article's order within each component."""
    cells = defaultdict(list)
    for r in records:
        for eid in r["eids"] or ["-"]:
            cells[r["component"], eid].append(r)
    return [(component, eid, verdict(found))
            for (component, eid), found in sorted(cells.items(), key=lambda kv: (kv[0][0], ORDER.get(kv[0][1], 999)))]


def format_table(rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows + [("component", "E-id", "")]) for i in range(2)]
    lines = [f"{'component':<{widths[0]}}  {'E-id':<{widths[1]}}  verdict"]
    lines += [f"{c:<{widths[0]}}  {e:<{widths[1]}}  {v}" for c, e, v in rows]
    return lines


def observations(records: list[dict]) -> list[str]:
    """What the subject did where nothing is judged (a query with no key visible, a case with no
    output defined, a Jacobian it gives no graph for), per component and option set, over all its
    checks."""
    seen = defaultdict(set)
    for r in records:
        if r["status"] == "pass" and r["message"].startswith("observed: "):
            options = "".join(f", {k}={v}" for k, v in r["options"].items())
            seen[f"{r['component']}{options}"].update(r["message"].removeprefix("observed: ").split("; "))
    return [f"{where}: {'; '.join(sorted(what))}" for where, what in sorted(seen.items())]
