"""The conformance summary: records folded into a table of component × E-id."""
from __future__ import annotations

import re
import textwrap
from collections import defaultdict

from nlpspec.spec import CATALOGUE

ORDER = {eid: n for n, eid in enumerate(CATALOGUE)}
RANK = {"error": 0, "fail": 1, "stale": 2, "xfail": 3, "not judged": 4, "pass": 5, "skip": 6}


def worst(records: list[dict]) -> str:
    """The worst status of these records, with the checks that have it named unless it is a pass."""
    status = min(records, key=lambda r: RANK[r["status"]])["status"]
    if status not in ("pass", "skip"):
        status += " (" + ", ".join(sorted({r["check"] for r in records if r["status"] == status})) + ")"
    return status


def shown(record: dict) -> str:
    """A record's option set as shown: its name, else its knobs ("attn=sdpa,masks=none")."""
    return record.get("option_set") or ",".join(f"{k}={v}" for k, v in record["options"].items())


def options_of(records: list[dict]) -> str:
    """The subject's option sets these records ran under: 'mode=gelu' or 'mode=post_ln, seq_first'."""
    sets = sorted({shown(r) for r in records} - {""})
    if not sets or any(r.get("option_set") for r in records):  # named sets: their names
        return ", ".join(sets)
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


WIDTH = 120  # no summary line is wider


def groups(records: list[dict]) -> list[tuple[str, list[dict]]]:
    """The records by the variant they ran as: the article's own first, then by number of variants."""
    found = defaultdict(list)
    for r in records:
        found[r["variant"]].append(r)
    return sorted(found.items(), key=lambda kv: (kv[0].count(",") + bool(kv[0]), kv[0]))


def whole(record: dict) -> bool:
    """A failure where the subject returned no intermediates (no gates, no weights): the component's,
    not each E-id's, since the outputs it returned depend on every equation."""
    return record["status"] in ("fail", "xfail") and bool(record.get("unreturned"))


PINPOINT = re.compile(r"\[([\w.]+)\] ")  # a failure's message opens with the E-id it names (engine/failures.py)


def named(failure: dict) -> str:
    """The E-id a failure names: its `eid` field where the record has one, else its message's head."""
    found = PINPOINT.match(failure.get("message", ""))
    return failure.get("eid") or (found.group(1) if found else "")


def marks(record: dict, component: str) -> list[tuple[str, dict]]:
    """The rows a record marks: a pass (or a record without failures) every E-id it ran; a failure
    the E-id each of its failures names (the component, `component`, for one that names none of
    the record's: a raise, a form error, or outputs judged through others), and its other E-ids
    'not judged' where it named one, since the check stopped there; a case that died (status
    error: the process crashed, the suite raised) the component."""
    eids = record["eids"] or ["-"]
    if record["status"] == "error":
        return [(component, record)]
    if record["status"] not in ("fail", "xfail") or not record.get("failures") and not whole(record):
        return [(eid, record) for eid in eids]
    rows = {component if whole(record) or named(f) not in eids else named(f) for f in record.get("failures") or [{}]}
    unjudged = {**record, "status": "not judged"}
    return [(row, record) for row in rows] + \
        [(eid, unjudged) for eid in eids if eid not in rows and rows - {component}]


def component_row(component: str, records: list[dict]) -> str:
    """The label of the row a component's own failures mark: its name, or 'lstm.cell (component)'
    where an E-id has that name."""
    return f"{component} (component)" if any(component in r["eids"] for r in records) else component


def summary(records: list[dict]) -> list[str]:
    """The conformance summary, one block per component the subject offers:

        transformer: a = mode=post_ln, seq_first, as variants stack.final_norm, pe.scaled_input
                     b = mode=pre_ln, as variants enc.attn.pre_ln, …, stack.final_norm, pe.scaled_input
          mask.key_padding    pass (a, b)
          enc.attn.pre_ln     pass (b)

    Each way the component ran (an option set and the variants it declares) is named once, by a
    letter; a row gives the verdict of each E-id per letter, equal verdicts merged; a failure marks
    the E-id it names (see marks), a raise or form error the component's own row. Components the
    subject does not offer end the summary in one line."""
    by_component = defaultdict(list)
    for r in records:
        if r["component"]:  # not an error outside any case (plugin: its own lines)
            by_component[r["component"]].append(r)
    offered = {c: found for c, found in sorted(by_component.items()) if any(r["status"] != "skip" for r in found)}
    rows = {}  # component -> row -> the records that mark it
    for component, found in offered.items():
        rows[component] = defaultdict(list)
        for r in found:
            for row, marked in marks(r, component_row(component, found)):
                rows[component][row].append(marked)
    eid_width = max([len(row) for cells in rows.values() for row in cells] + [4])
    lines = []
    for component, found in offered.items():
        ran = groups([r for r in found if r["status"] != "skip"])
        shared = [v for v in ran[0][0].split(", ") if v and all(v in g.split(", ") for g, _ in ran)]
        legend = [f"every run as variant{'s' * (len(shared) > 1)} {', '.join(shared)}"] if shared else []
        if len(ran) > 1:
            for k, (variant, rs) in enumerate(ran):
                own = [v for v in variant.split(", ") if v and v not in shared]
                plus = ("plus " if shared else "as variants ") + ", ".join(own) if own else \
                    ("nothing more" if shared else "as the article")
                legend.append(f"{'abcdefghijklmnopqrstuvwxyz'[k]} = {options_of(rs) or 'no options'}: {plus}")
        if len(ran) == 1 and len({shown(r) for r in found if r["status"] != "skip"}) > 1:
            legend.append(f"ran as: {options_of([r for r in found if r['status'] != 'skip'])}")
        head = f"{component}: "
        if not legend:
            lines.append(component)
        for k, text in enumerate(legend):
            lines += _wrapped((head if k == 0 else " " * len(head)) + text, " " * (len(head) + 4))
        letters = {v: "abcdefghijklmnopqrstuvwxyz"[k] for k, (v, _) in enumerate(ran)}
        partial = [r for r in found if r.get("unreturned")]
        if partial:
            compared = sorted({name for r in partial for name in r.get("returned", ())})
            missing = sorted({e for r in partial for e in r["unreturned"]})
            lines += _wrapped(f"  outputs compared: {', '.join(compared)}; {', '.join(missing)} judged through them "
                              f"(not returned: a failure marks {component_row(component, found)}, not an equation)",
                              "    ")
        for eid, rs in sorted(rows[component].items(), key=lambda kv: ORDER.get(kv[0], 999)):
            by_verdict = defaultdict(list)
            for variant, group in groups(rs):
                by_verdict[worst(group)].append(letters.get(variant, ""))
            text = "; ".join(v + (f" ({', '.join(l for l in ls if l)})" if len(ran) > 1 else "")
                             for v, ls in by_verdict.items())
            lines += _wrapped(f"  {eid:<{eid_width}}  {text}", " " * (eid_width + 4))
    absent = [c for c in by_component if c not in offered and not any(r.get("declined") for r in by_component[c])]
    if absent:
        lines += _wrapped(f"not offered (skipped): {', '.join(sorted(absent))}", "  ")
    ruled_out = [c for c in by_component if c not in offered and c not in absent]
    if ruled_out:
        lines += _wrapped(f"not run, as declared (below): {', '.join(sorted(ruled_out))}", "  ")
    return lines


def _wrapped(line: str, indent: str) -> list[str]:
    return textwrap.wrap(line, WIDTH, subsequent_indent=indent, break_on_hyphens=False) or [line]


def declarations(records: list[dict]) -> list[str]:
    """What each component's declaration leaves unchecked or sets, and the checks it rules out, per
    option set: one line where every option set of the component says the same, else one line per
    distinct statement naming the option sets it holds for ("mha [path=weights]: …"), so that what one
    set declares (float32 only) is never read as the whole component's."""
    said = defaultdict(lambda: defaultdict(dict))  # component -> option set -> statement -> None
    skipped = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))  # component -> set -> why -> checks
    for r in records:
        said[r["component"]][shown(r)].update(dict.fromkeys(r.get("declared", ())))
        if r.get("declined"):
            skipped[r["component"]][shown(r)][r["declined"]].add(r["check"])
    lines = []
    for where in sorted(set(said) | set(skipped)):
        by_parts = defaultdict(list)  # the statement -> the option sets that make it
        for option_set in sorted(set(said[where]) | set(skipped[where])):
            parts = list(said[where][option_set]) + [f"not run ({why}): {', '.join(sorted(checks))}"
                                                     for why, checks in sorted(skipped[where][option_set].items())]
            by_parts[tuple(parts)].append(option_set)
        for parts, sets in by_parts.items():
            label = f" [{'; '.join(s or 'no options' for s in sets)}]" if len(by_parts) > 1 else ""
            if parts:
                lines += _wrapped(f"{where}{label}: {'; '.join(parts)}", "  ")
    return lines


def observations(records: list[dict]) -> list[str]:
    """What the subject did where nothing is judged (a query with no key visible, a case with no
    output defined, a Jacobian it gives no graph for), per component and option set, over all its
    checks."""
    seen = defaultdict(set)
    for r in records:
        if r["status"] == "pass" and r.get("observations"):
            seen[f"{r['component']}{', ' + shown(r) if shown(r) else ''}"].update(r["observations"])
    return [f"{where}: {'; '.join(sorted(what))}" for where, what in sorted(seen.items())]
