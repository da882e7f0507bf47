"""nlpspec installs as one import package with a pytest plugin, and no module has two names; its
metadata is complete and its version one; README's CI job runs as written against the wheel built
from the checkout (NLPSPEC_PACKAGE_TEST=1: a fresh virtual environment and its installs)."""
import ast
import importlib.metadata
import json
import os
import pathlib
import shutil
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest

pytestmark = pytest.mark.selftest
ROOT = pathlib.Path(__file__).parent.parent
MAPPED = {"nlpspec": "nlpspec", "spec": "nlpspec/spec", "reference": "nlpspec/reference",
          "properties": "nlpspec/properties", "subjects": "nlpspec/subjects", "docs": "nlpspec/docs"}
DOCS_ONLY = {"matplotlib", "latex2mathml", "graphviz", "markdown_it", "filelock"}  # the docs extra's packages


def copy_of_the_tracked_files(into: pathlib.Path) -> pathlib.Path:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


def test_the_metadata_is_complete_and_the_version_is_the_package_s():
    import nlpspec
    assert importlib.metadata.version("nlpspec") == nlpspec.__version__  # pip show and nlpspec.__version__ agree
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]  # single-sourced: nlpspec.__version__
    meta = importlib.metadata.metadata("nlpspec")
    assert meta["License-Expression"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert meta["Author"] == "nlpspec developers"
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Source", "Issues", "Documentation"}, urls
    classifiers = meta.get_all("Classifier")
    for expected in ["Framework :: Pytest", "Programming Language :: Python :: 3.10", "Programming Language :: Python :: 3.11",
                     "Programming Language :: Python :: 3.12", "Operating System :: OS Independent",
                     "Topic :: Scientific/Engineering :: Artificial Intelligence", "Topic :: Software Development :: Testing"]:
        assert expected in classifiers, expected
    assert {"docs", "browser", "hf", "keras", "test"} <= set(meta.get_all("Provides-Extra"))
    core = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in core if re.split(r"[<>=!~; \[]", r)[0].replace("-", "_") in DOCS_ONLY], core
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [e.value for e in scripts if e.name == "nlpspec"] == ["nlpspec.cli:main"]


def test_the_package_imports_no_docs_only_package_outside_docs():
    """The conformance checks (`pytest --pyargs nlpspec`) run without the docs extra: no module of the
    package but the site's (docs/) imports matplotlib, latex2mathml, graphviz, markdown-it-py or filelock
    when it is imported (a function may, when it is called: the site's command, say)."""
    def on_import(node):  # the statements that run when the module is imported: not the bodies of functions
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from on_import(child)
    found = []
    for folder in set(MAPPED) - {"docs"}:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in on_import(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in DOCS_ONLY]
    assert not found, found


def test_the_wheel_holds_one_top_level_package_the_conformance_test_and_the_plugin(tmp_path):
    """Built from a copy of the tracked files: an in-tree build would leave build/ in the checkout,
    whose stale modules a later `pip install .` there would ship."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    source = copy_of_the_tracked_files(tmp_path / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("nlpspec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"nlpspec"}
    assert "nlpspec/test_conformance.py" in names and "nlpspec/spec/oracle.py" in names
    assert "nlpspec/properties/engine/tolerance.py" in names and "nlpspec/properties/tolerance.py" not in names
    assert not any(n.startswith("nlpspec/tests/") for n in names)  # the suite's own tests stay in the checkout
    shipped = {n for n in names if n.endswith(".py")}
    sources = {MAPPED[n.split("/")[0]] + n[len(n.split("/")[0]):] for n in tracked
               if n.endswith(".py") and n.split("/")[0] in MAPPED}
    assert shipped == sources  # every module of the package, and nothing else
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[pytest11]\nnlpspec = nlpspec.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]\nnlpspec = nlpspec.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.parametrize("folder", ["spec", "reference", "properties", "subjects", "docs"])
def test_a_folder_of_the_checkout_refuses_its_bare_name(folder):
    done = subprocess.run([sys.executable, "-c", f"import {folder}"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 1 and f"ImportError: import nlpspec.{folder}, not {folder}" in done.stderr


def test_a_sweep_spreads_over_workers_given_by_tx(tmp_path):
    """README, "Past one machine": pytest-xdist's --tx names the workers (popen here: local processes;
    ssh=host//python=python3 on other machines) and --dist how the checks are spread; the conformance
    run goes through them as through -n."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--pyargs", "nlpspec",
                           "--subject", "reference", "-k", "rnn.cell and (oracle or determinism)", "--tx", "popen", "--tx",
                           "popen", "--dist", "load"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\[gw0\] .*PASSED", done.stdout) and re.search(r"\[gw1\] .*PASSED", done.stdout), done.stdout[-3000:]


def test_the_profiles_can_be_named_on_the_command_line(tmp_path):
    """`--hypothesis-profile scale` (README, Options): registered when the plugin is imported, before
    Hypothesis's own plugin loads the profile named (it raised "Profile 'thorough' is not registered");
    the scale profile collects the oracle and gradient checks of its components alone."""
    from nlpspec.properties.profiles import SCALE_SCOPE
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider", "--pyargs",
                           "nlpspec", "--subject", "reference", "--hypothesis-profile", "scale"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = {tuple(line.split("[", 1)[1].split("-")[:2]) for line in done.stdout.splitlines() if "[" in line}
    components, checks = SCALE_SCOPE
    assert collected == {(c, k) for c in components for k in checks}, collected
    assert " deselected" in done.stdout, done.stdout[-3000:]