"""nlpspec installs as one import package with a pytest plugin, and no module has two names."""
import pathlib
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.selftest
ROOT = pathlib.Path(__file__).parent.parent


def test_the_wheel_holds_one_top_level_package_the_conformance_test_and_the_plugin(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("nlpspec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"nlpspec"}
    assert "nlpspec/test_conformance.py" in names and "nlpspec/spec/oracle.py" in names
    assert not any(n.startswith("nlpspec/tests/") for n in names)  # the suite's own tests stay in the checkout
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[pytest11]\nnlpspec = nlpspec.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.parametrize("folder", ["spec", "reference", "properties", "subjects", "docs"])
def test_a_folder_of_the_checkout_refuses_its_bare_name(folder):
    done = subprocess.run([sys.executable, "-c", f"import {folder}"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 1 and f"ImportError: import nlpspec.{folder}, not {folder}" in done.stderr
