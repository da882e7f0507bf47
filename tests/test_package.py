"""nlpspec installs as one import package with a pytest plugin, and no module has two names."""
import pathlib
import shutil
import re
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.selftest
ROOT = pathlib.Path(__file__).parent.parent


def test_the_wheel_holds_one_top_level_package_the_conformance_test_and_the_plugin(tmp_path):
    """Built from a copy of the tracked files: an in-tree build would leave build/ in the checkout,
    whose stale modules a later `pip install .` there would ship."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    source = tmp_path / "source"
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("nlpspec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"nlpspec"}
    assert "nlpspec/test_conformance.py" in names and "nlpspec/spec/oracle.py" in names
    assert "nlpspec/properties/engine/tolerance.py" in names and "nlpspec/properties/tolerance.py" not in names
    assert not any(n.startswith("nlpspec/tests/") for n in names)  # the suite's own tests stay in the checkout
    shipped = {n for n in names if n.endswith(".py")}
    mapped = {"nlpspec": "nlpspec", "spec": "nlpspec/spec", "reference": "nlpspec/reference",
              "properties": "nlpspec/properties", "subjects": "nlpspec/subjects", "docs": "nlpspec/docs"}
    sources = {mapped[n.split("/")[0]] + n[len(n.split("/")[0]):] for n in tracked
               if n.endswith(".py") and n.split("/")[0] in mapped}
    assert shipped == sources  # every module of the package, and nothing else
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[pytest11]\nnlpspec = nlpspec.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()


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