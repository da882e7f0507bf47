"""The `nlpspec` command (also `python -m nlpspec`): what the suite checks, and the site.

    nlpspec list                  every component: its parameters, inputs and outputs with their shapes,
                                  checks, variants and what it may declare; the profiles; the subjects
    nlpspec contract COMPONENT    one component's full contract
    nlpspec site [--report R.json …] [--out DIR]    the documentation site, from reports
    nlpspec --version

Everything shown is read from the suite (properties/contract.py: drawn_shapes.py draws each
component's cases and names their sizes); nothing here is typed per component.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import sys
import textwrap

EXIT_CODES = """exit codes:
  0  done
  1  the site could not be built: a package of nlpspec[docs] missing (or graphviz's dot)
  2  a usage error: an unknown command, option or component, a report file that is not there"""

WIDTH = 100
LABEL = 12  # the width of a block's labels ("parameters ")
DOCS_PACKAGES = ("matplotlib", "latex2mathml", "graphviz", "markdown_it", "filelock")


def _wrap(label: str, items: list[str] | str, sep: str = ", ", indent: int = LABEL + 2) -> str:
    """Items after a label, wrapped at WIDTH: never inside a short item (W_1 (d_model, d_ff)) or a shape."""
    if isinstance(items, str):
        items = [items]
    keep = lambda text: text.replace(" ", "\N{NO-BREAK SPACE}")
    items = [keep(item) if len(item) <= 40 else re.sub(r"\w+ \([^()]{0,40}\)", lambda m: keep(m.group(0)), item)
             for item in items]
    return textwrap.fill(sep.join(items) or "none", WIDTH, initial_indent=f"  {label:<{indent - 2}}",
                         subsequent_indent=" " * indent, break_on_hyphens=False,
                         break_long_words=False).replace("\N{NO-BREAK SPACE}", " ")


def _block(name: str) -> str:
    from nlpspec.properties import contract as c
    from nlpspec.properties.shape_listing import listing
    from nlpspec.properties.suite import COMPONENTS, checks_for

    found, component = c.contract(name), COMPONENTS[name]
    refs = c.references(name)
    required, optional = found.outputs(refs)
    variants = []
    for variant in found.variants:
        changed = found.changes(variant, refs)
        variants.append(variant + (f" ({'; '.join(changed)})" if changed else ""))
    declarable = [f"lacks {cap}" for cap in component.capabilities]
    declarable += [f"constant {k}" for k in component.constants]
    indices = c.index_text([found.indices(refs)])
    lines = [textwrap.fill(f"{name}  [{', '.join(component.eids)}]", WIDTH, subsequent_indent="    "),
             _wrap("parameters", listing(found.case["parameters"], refs) + ([f"({indices})"] if indices else [])
                   if component.has_parameters else "none ({})", "; "),
             _wrap("inputs", listing(found.case["inputs"])),
             _wrap("outputs", ", ".join(required) + (f"; optional: {', '.join(optional)}" if optional else "")),
             _wrap("checks", [check.name for check in checks_for(component)]),
             _wrap("variants", variants, "; "),
             _wrap("may declare", declarable)]
    return "\n".join(lines)


def _profiles() -> list[str]:
    from hypothesis import settings

    from nlpspec.properties import profiles
    names = re.findall(r"register_profile\(\"(\w+)\"", open(profiles.__file__).read())
    lines = []
    for name in names:
        chosen = settings.get_profile(name)
        notes = []
        if name == profiles.chosen():
            notes.append("the default here" + (" (CI is set)" if name == "ci" else ""))
        if chosen.derandomize:
            notes.append("derandomized, no database")
        if profiles.at_scale(name):
            components, checks = profiles.SCALE_SCOPE
            notes.append(f"the sizes where tiled kernels break; only {', '.join(checks)} of {', '.join(components)}")
        lines.append(_wrap(name, f"{chosen.max_examples:>3} examples per check" + (f" ({'; '.join(notes)})" if notes else ""),
                           indent=12))
    return lines


def _extra_for(subject: str) -> tuple[str, str] | None:
    """(the extra, its first package) for a built-in subject that needs one of nlpspec's extras."""
    from nlpspec.subjects.registry import EXTRAS
    wanted = EXTRAS.get(subject)
    if wanted is None:
        return None
    try:
        requires = importlib.metadata.requires("nlpspec") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        match = re.match(r"([A-Za-z0-9_.-]+).*extra == \"(\w+)\"", requirement)
        if match and match.group(2) == wanted:
            return wanted, match.group(1)
    return None


def _subjects() -> list[str]:
    from nlpspec.properties.suite import COMPONENTS
    from nlpspec.subjects.registry import BUILTINS
    from nlpspec.subjects.zoo import MUTANTS
    lines, width = [], max(map(len, BUILTINS)) + 2
    for name, path in BUILTINS.items():
        extra = _extra_for(name)
        note = ""
        if extra:
            installed = importlib.util.find_spec(extra[1].replace("-", "_")) is not None
            note = f"  (needs {extra[1]}: pip install 'nlpspec[{extra[0]}]'{'' if installed else '; not installed'})"
        lines.append(f"  {name:<{width}}{path}{note}")
    lines.append(_wrap("zoo.NAME", f"the mutant zoo: {len(MUTANTS)} subjects with one deliberate bug each, which "
                       "the suite must catch; by the component they break:", indent=width + 2))
    by_component: dict[str, list] = {}
    for name, mutant in MUTANTS.items():
        by_component.setdefault(mutant.components[0], []).append(f"zoo.{name}")
    order = list(COMPONENTS)
    for component in sorted(by_component, key=lambda c: order.index(c) if c in order else len(order)):
        lines.append(_wrap("  " + component, by_component[component], indent=24))
    lines.append("  your own: package.module:object (a Subject, or a callable returning one)")
    return lines


def _legend(names) -> list[str]:
    from nlpspec.properties import contract as c
    from nlpspec.properties.drawn_shapes import DERIVED, DIMENSIONS
    used = [d for d in DIMENSIONS if any(d in c.contract(n).dimensions() for n in names) and d != "pairs"]
    derived = {name: expr for expr, name in DERIVED.items() if set(expr.split("·")) <= set(used)}
    lines = [f"  {d:<8}{DIMENSIONS[d]}" + (f" = {derived[d]}" if d in derived else "") for d in used]
    dtypes = set().union(*(c.contract(n).dtypes() for n in names))
    return lines + [textwrap.fill(c.dtypes_text(dtypes), WIDTH, initial_indent="  ", subsequent_indent="  ")]


def list_all(out) -> int:
    from nlpspec.properties.suite import COMPONENTS
    print(f"nlpspec {_version()}: {len(COMPONENTS)} components (`nlpspec contract NAME` for one in full)\n", file=out)
    for name in COMPONENTS:
        print(_block(name) + "\n", file=out)
    print("Dimensions:", *_legend(COMPONENTS), sep="\n", file=out)
    print("\nHypothesis profiles (pytest --hypothesis-profile NAME):", *_profiles(), sep="\n", file=out)
    print("\nBuilt-in subjects (pytest --pyargs nlpspec --subject NAME):", *_subjects(), sep="\n", file=out)
    return 0


def contract(name: str, out) -> int:
    from nlpspec.properties import contract as c
    from nlpspec.properties.case import Target
    from nlpspec.properties.engine.component import kind_for
    from nlpspec.properties.shape_listing import listing
    from nlpspec.properties.suite import COMPONENTS, checks_for
    from nlpspec.spec import CATALOGUE
    from nlpspec.spec.constants import DEFAULTS

    if name not in COMPONENTS:
        print(f"nlpspec contract: error: unknown component {name!r}; known: {', '.join(COMPONENTS)}", file=sys.stderr)
        return 2
    found, component = c.contract(name), COMPONENTS[name]
    kind = kind_for(component)
    required, optional = found.outputs()
    say = lambda *lines: print(*lines, sep="\n", file=out)
    say(f"{name}: the E-ids {', '.join(component.eids)}", "")
    indices = c.index_text([found.indices()])
    say(f"parameters (the dict its builder receives{'; ' + indices if indices else ''}):",
        *(f"  {line}" for line in listing(found.case["parameters"])) if component.has_parameters else "  none: {}")
    say("inputs (the call's keywords):", *(f"  {line}" for line in listing(found.case["inputs"])))
    bare = f", or the bare {component.required[0]} tensor" if len(component.required) == 1 else ""
    say(f"outputs (a dict keyed by these names{bare}):", *(f"  {line}" for line in required),
        *(f"  {line}  (optional: checked when returned)" for line in optional))
    say("", "dimensions:", *_legend([name]))
    say("", "checks (the E-ids each bears on):")
    for check in checks_for(component):
        eids = ", ".join(check.eids(Target(component, kind)))
        extra = [f"needs {', '.join(needs)}" for needs in [check.needs(component)] if needs]
        extra += [f"not run where the subject lacks {', '.join(req)}" for req in [check.requires(component)] if req]
        say(textwrap.fill(f"{check.name}: {check.statement}", WIDTH, initial_indent="  ", subsequent_indent="      "),
            textwrap.fill(f"[{eids}]" + (f" ({'; '.join(extra)})" if extra else ""), WIDTH, initial_indent="      ",
                          subsequent_indent="      "))
    say("", "variants (Subject.variants = {" + repr(name) + ": …}):")
    for variant in found.variants:
        entry = CATALOGUE.get(variant)
        statement = getattr(entry, "statement", "")
        say(textwrap.fill(f"{variant}: {statement}" if statement else variant, WIDTH, initial_indent="  ",
                          subsequent_indent="      "))
        for changed in found.changes(variant):
            say(textwrap.fill(changed, WIDTH, initial_indent="      shapes: ", subsequent_indent="        "))
    if not found.variants:
        say("  none")
    say("", "may declare (Declaration(…) in Subject.declarations):")
    for cap, meaning in component.capabilities.items():
        say(f"  lacks={cap!r}: {meaning}")
    for constant in component.constants:
        say(f"  constants={{{constant!r}: …}}: default {float(DEFAULTS[constant]):g}")
    say("  absent=(parameter names it structurally lacks: drawn as 0 if added, 1 if a scale), dtypes=, devices=, note=")
    return 0


def site(args) -> int:
    missing = [r for r in args.report if not os.path.isfile(r)]
    if missing:
        print(f"nlpspec site: error: no such report: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        from nlpspec.docs import build
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in DOCS_PACKAGES:
            print(f"nlpspec site: {exc.name.split('.')[0]} is not installed: pip install 'nlpspec[docs]'", file=sys.stderr)
            return 1
        raise
    argv = ["--out", args.out] + [x for r in args.report for x in ("--report", r)]
    argv += ["--no-quick"] * args.no_quick + ["--long"] * args.long
    try:
        build.main(argv)
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in DOCS_PACKAGES:  # graphviz's dot not on PATH, …
            print(f"nlpspec site: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
            return 1
        raise
    return 0


def _version() -> str:
    from nlpspec import __version__
    return __version__


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="nlpspec", description="What nlpspec checks: its components with their shapes, checks, variants and\n"
        "declarations; and the documentation site. The checks run under pytest:\n"
        "pytest --pyargs nlpspec --subject NAME.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--version", action="version", version=f"nlpspec {_version()}")
    commands = main_parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="every component with its shapes, checks, variants and declarations; the "
                        "Hypothesis profiles; the built-in subjects", epilog=EXIT_CODES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    one = commands.add_parser("contract", help="one component's full contract", epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    one.add_argument("component", metavar="COMPONENT", help="a component's name (nlpspec list shows them), e.g. mha")
    docs = commands.add_parser("site", help="build the documentation site from --nlpspec-report files",
                               epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    docs.add_argument("--report", action="append", default=[], metavar="R.json",
                      help="an --nlpspec-report JSON file (repeatable)")
    docs.add_argument("--out", default="site", metavar="DIR", help="where to write the site (default: site/)")
    docs.add_argument("--no-quick", action="store_true", help="no quick runs of the built-in subjects no report "
                      "covers: the conformance page shows the reports alone")
    docs.add_argument("--long", action="store_true", help="time RNN against self-attention up to 8192 positions")
    return main_parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            return list_all(sys.stdout)
        if args.command == "contract":
            return contract(args.component, sys.stdout)
        return site(args)
    except BrokenPipeError:  # nlpspec list | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
