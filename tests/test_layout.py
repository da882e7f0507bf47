"""The layers point down (DESIGN.md): the engine (properties/) reads subjects through the subject
protocol alone, importing that protocol loads no registry and no adapter, no module imports itself
back through others; and docs/guide/layout.md names the modules as they are."""
import ast
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.selftest
ROOT = pathlib.Path(__file__).parent.parent
MAPPED = {"nlpspec": "nlpspec", "spec": "nlpspec.spec", "reference": "nlpspec.reference",
          "properties": "nlpspec.properties", "subjects": "nlpspec.subjects", "docs": "nlpspec.docs"}
PROTOCOL = "nlpspec.subjects.protocol"


def modules() -> dict[str, pathlib.Path]:
    """Every module of the package by its dotted name (a package by its own name: its __init__)."""
    found = {}
    for folder, package in MAPPED.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str, tree: ast.AST):
    """(line, module) for each import statement in `tree` of the module `name`, relative ones resolved;
    `from a import b` names the module a.b where there is one, else a."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def test_the_engine_imports_of_subjects_only_the_protocol():
    found = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for name, path in MODULES.items() if name.startswith("nlpspec.properties")
             for line, target in imports(name, ast.parse(path.read_text(), str(path)))
             if target.startswith("nlpspec.subjects") and target != PROTOCOL]
    assert not found, found


def test_importing_the_protocol_or_the_engine_loads_no_registry_and_no_adapter(tmp_path):
    loaded = subprocess.run([sys.executable, "-c", "import sys, nlpspec.subjects.protocol, nlpspec.properties.runner, "
                             "nlpspec.properties.generic; print(*sorted(m for m in sys.modules if m.startswith("
                             "'nlpspec.subjects')))"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["nlpspec.subjects", PROTOCOL]


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the directed graph, as the path that closes it ([] if it is acyclic)."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return []
    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle():
    """Among the package's modules, by every import they make, a function's deferred one included
    (deferring an import hides a cycle from Python, not from the reader)."""
    graph = {name: {target for _, target in imports(name, ast.parse(path.read_text())) if target in MODULES
                    and target != name} for name, path in MODULES.items()}
    assert not cycle(graph), " -> ".join(cycle(graph))


LAYOUT = ROOT / "docs" / "guide" / "layout.md"
DESCRIBED = ("spec", "subjects", "properties")  # with their subfolders, but the zoo's


def described_modules() -> dict[str, set[str]]:
    """The modules layout.md names, by folder. A list item opens with its folders (`spec/`; `engine/`
    in an item nested in `properties/`'s is properties/engine) and names each module as `name` (what it
    does), on one line or two; a line belongs to the deepest item indented less than it."""
    texts, items = [], []  # texts: (folders, lines) of each item; items: (indent, text) of those open here
    for line in LAYOUT.read_text().splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        items = [(i, text) for i, text in items if i < indent]
        opened = re.match(r" *- ((?:`\w+/`(?:, )?)+)", line)
        if opened:
            parent = items[-1][1][0][0] + "/" if items else ""
            texts.append(([parent + f for f in re.findall(r"`(\w+)/`", opened[1])], []))
            items.append((indent, texts[-1]))
        if items:
            items[-1][1][1].append(line)
    found = {}
    for folders, lines in texts:
        for folder in folders:
            found.setdefault(folder, set()).update(re.findall(r"`([a-z_][a-z0-9_]*)`\s+\(", " ".join(lines)))
    return found


def package_modules(folder: str) -> set[str]:
    return {path.stem for path in (ROOT / folder).glob("*.py") if path.stem != "__init__"}


def test_the_layout_reader_finds_nested_folders_and_their_modules(tmp_path, monkeypatch):
    page = tmp_path / "layout.md"
    page.write_text("- `a/` text: `x` (one), `Y` (a class), `z.py` (a file)\n  and `w`\n  (two).\n"
                    "  - `b/`, `c/`, each `v` (three);\n\n  `u` (the outer item's)\n`t` (no item's)\n")
    monkeypatch.setattr(sys.modules[__name__], "LAYOUT", page)
    assert described_modules() == {"a": {"x", "w", "u"}, "a/b": {"v"}, "a/c": {"v"}}


def test_the_layout_names_every_module_and_only_modules():
    """docs/guide/layout.md lists the modules of spec/, subjects/ and properties/ as they are."""
    folders = [f for top in DESCRIBED for f in [top, *(str(p.parent.relative_to(ROOT)) for p in
               sorted((ROOT / top).glob("*/**/__init__.py")))] if not f.startswith("subjects/zoo")]
    described = described_modules()
    unnamed = {f: sorted(package_modules(f) - described.get(f, set())) for f in folders}
    absent = {f: sorted(names - package_modules(f)) for f, names in described.items()}
    unnamed, absent = ({f: names for f, names in found.items() if names} for found in (unnamed, absent))
    assert not unnamed, f"modules layout.md does not name: {unnamed}"
    assert not absent, f"layout.md names modules that do not exist: {absent}"


PROTOCOL_SIDE = {"__init__", "protocol", "registry", "glue", "reference"}  # subjects/'s modules that are no adapter


def test_a_new_component_touched_the_five_files_layout_md_names():
    """layout.md's claim, measured on RMSNorm, the component added to prove it: the package's modules that
    name it, the adapters and the zoo aside, are the five the description lists (the zoo's one among them)."""
    text = " ".join(LAYOUT.read_text().split())
    claim = re.search(r"Adding a component touches five files, as RMSNorm did(.*?)The generic checks", text)
    assert claim, "layout.md no longer states what adding a component touches"
    claimed = re.findall(r"`((?:spec|properties|reference|subjects)/[\w/]+\.py)`", claim.group(1))[:5]
    named = {str(path.relative_to(ROOT)) for path in MODULES.values()
             if re.search(r"rms_?norm", path.read_text(), re.I)}
    adapters = {f for f in named if f.count("/") == 1 and f.startswith("subjects/")
                and pathlib.Path(f).stem not in PROTOCOL_SIDE}
    zoo = {f for f in named if f.startswith("subjects/zoo/")}
    assert len(set(claimed)) == 5 and set(claimed) - zoo == named - adapters - zoo, (claimed, sorted(named))
