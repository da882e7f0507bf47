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
    assert {"docs", "browser", "hf", "keras", "onnx", "test"} <= set(meta.get_all("Provides-Extra"))
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
    guide = {"nlpspec/docs/" + n[len("docs/"):] for n in tracked if n.startswith("docs/guide/") and n.endswith(".md")}
    assert guide and guide <= set(names)  # the guide's pages, which the site renders
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

CI_JOB = re.compile(r"<!-- ci-job -->\n(.*?)<!-- /ci-job -->", re.S)
GIT_SOURCE = "git+https://github.com/nlpspec/nlpspec@v"  # README installs nlpspec from its tag: v{__version__}
SUBJECT_NAME = "mypackage.nlpspec_adapter:SUBJECT"


def readme_ci_commands() -> list[str]:
    """The `run:` steps of README's CI job (the YAML between the ci-job markers), in order."""
    [block] = CI_JOB.findall((ROOT / "README.md").read_text())
    [yaml] = re.findall(r"```yaml\n(.*?)```", block, re.S)
    return [m.group(1) for m in re.finditer(r"^\s*- run: (.+)$", yaml, re.M)]


@pytest.mark.skipif(os.environ.get("NLPSPEC_PACKAGE_TEST") != "1",
                    reason="slow (builds the sdist and the wheel, a fresh venv and its installs, about 2.5 min): "
                           "NLPSPEC_PACKAGE_TEST=1 python -m pytest -p no:cacheprovider tests/test_package.py -k ci_job")
def test_readme_ci_job_runs_as_written_against_the_built_wheel(tmp_path):
    """README's CI job, as written, in a fresh virtual environment outside the checkout: the one change
    is where nlpspec comes from (the wheel `python -m build` makes of the checkout, for the git tag);
    "your package" is a package mypackage whose nlpspec_adapter is examples/my_lstm.py, installed by the
    job's `pip install .`. The installs take the project's lock (PIP_CONSTRAINT=constraints.txt). Then,
    in the same environment, from an empty folder, `pytest -n 2 --pyargs nlpspec` (the reference) passes."""
    import nlpspec
    commands = readme_ci_commands()
    joined = "\n".join(commands)
    assert joined.count(GIT_SOURCE + nlpspec.__version__ + '"') == 1, joined  # the tag of this version
    assert joined.count(SUBJECT_NAME) == 1, joined
    assert [c.split()[:2] for c in commands] == [["pip", "install"]] * 3 + [["pytest", "-n"]], commands

    # python -m build (the sdist, then the wheel from it) of the tracked files, and twine check
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist),
                            str(copy_of_the_tracked_files(tmp_path / "source"))],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = dist.glob(f"nlpspec-{nlpspec.__version__}-py3-none-any.whl")
    [sdist] = dist.glob(f"nlpspec-{nlpspec.__version__}.tar.gz")
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and checked.stdout.count("PASSED") == 2, checked.stdout + checked.stderr

    # your package, and a fresh venv whose pip, python and pytest come first on PATH (setup-python's)
    project = tmp_path / "mypackage-project"
    (project / "mypackage").mkdir(parents=True)
    (project / "mypackage" / "__init__.py").write_text("")
    shutil.copy(ROOT / "examples" / "my_lstm.py", project / "mypackage" / "nlpspec_adapter.py")
    (project / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=64"]\n'
                                            'build-backend = "setuptools.build_meta"\n\n'
                                            '[project]\nname = "mypackage"\nversion = "1.0"\n'
                                            'dependencies = ["torch"]\n')
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV"}}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "PIP_CONSTRAINT": str(ROOT / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    for command in commands:
        command = command.replace(GIT_SOURCE + nlpspec.__version__, wheel.as_uri())  # the only change
        done = subprocess.run(["bash", "-e", "-c", command], cwd=project, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}\n" + done.stdout[-4000:] + done.stderr[-4000:]

    report = json.loads((project / "nlpspec.json").read_text())
    assert report["subject"] == "mine" and report["records"], report
    statuses = {(r["component"], r["check"]): r["status"] for r in report["records"]}
    assert statuses[("lstm.cell", "oracle")] == "pass" and "fail" not in statuses.values(), statuses
    where = subprocess.run(["python", "-c", "import nlpspec, mypackage; print(nlpspec.__file__, mypackage.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.split() == [str(venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" /
                                        "site-packages" / name / "__init__.py") for name in ("nlpspec", "mypackage")], \
        where.stdout + where.stderr

    # the conformance checks of the bundled reference, from the wheel, outside any checkout
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(["pytest", "-n", "2", "-p", "no:cacheprovider", "--pyargs", "nlpspec"], cwd=empty, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-4000:] + done.stderr[-4000:]
