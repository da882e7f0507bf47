#!/usr/bin/env python3
"""Writes constraints.txt, the project's lock: the exact version of every package that
`pip install -c constraints.txt -e '.[test,hf,keras,onnx,jax]'` installs beside torch, as pip resolves it, for
each Python named (the first is the lock's own; a package whose version differs on another Python
gets a line for each, with a python_version marker).

    python scripts/lock.py --python python3.11 --python python3.10 --python python3.12
        keep the versions locked now; add what the extras now need, drop the rest
    python scripts/lock.py --upgrade --python …
        resolve anew, each package at its newest release (torch stays as locked)

Nothing is installed: each Python's pip resolves with --dry-run --ignore-installed, as in a fresh
virtual environment. An upgrade is a deliberate commit of the file this writes, after the suite
passes on it.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
EXTRAS = "test,hf,keras,onnx,jax"
HEADER = """\
# The project's lock: the exact version of each package that the project's own installs take, so that a
# fresh machine gets the same toolchain every time. README's quick start (the test extra) and .ci/run
# install with it:
#   pip install -c constraints.txt -e '.[test]'
#   pip install -c constraints.txt -e '.[hf,keras,onnx,jax]'      # the subjects' extras, torch unchanged
# torch==2.13.0 also keeps pip from fetching a multi-GB CUDA build where no GPU is (pip takes a CPU
# build where one lies in its find-links; PyPI's Linux wheel is a CUDA build, whose packages are locked too).
# Written by `{command}`:
# the packages of '.[{extras}]' and what they need, resolved on CPython {pythons};
# a line with a python_version marker holds for that Python alone.
# Upgrades are deliberate commits: run scripts/lock.py --upgrade, run the suite on the new versions,
# commit this file.
"""
LINE = re.compile(r'([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)\s*(?:;\s*python_version\s*==\s*"([0-9.]+)")?')


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str, python: str) -> dict[str, str]:
    """The lock's pins that hold on Python `python` (X.Y)."""
    found = {}
    for line in text.splitlines():
        match = LINE.fullmatch(line.split("#", 1)[0].strip())
        if match and match.group(3) in (None, python):
            found[canonical(match.group(1))] = match.group(2)
    return found


def python_version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def resolve(python: str, held: dict[str, str], torch: str) -> dict[str, str] | None:
    with tempfile.TemporaryDirectory() as tmp:
        seed, report = pathlib.Path(tmp, "seed.txt"), pathlib.Path(tmp, "report.json")
        seed.write_text("".join(f"{name}=={version}\n" for name, version in sorted(held.items())))
        done = subprocess.run([python, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                               "--disable-pip-version-check", "--report", str(report), "-c", str(seed),
                               f"torch=={torch}", f".[{EXTRAS}]"], cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return None
        resolved = json.loads(report.read_text())["install"]
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"].split("+", 1)[0]  # 2.13.0+cpu: PyPI's 2.13.0
            for item in resolved if canonical(item["metadata"]["name"]) != "nlpspec"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="resolve anew, torch alone held at its locked version")
    parser.add_argument("--python", action="append", help="a Python to resolve for (repeat; the first is the lock's own)")
    args = parser.parse_args(argv)
    pythons = args.python or [sys.executable]
    text = LOCK.read_text() if LOCK.exists() else ""
    versions = {python: python_version(python) for python in pythons}
    per_python = {}
    for python, version in versions.items():
        short = version.rsplit(".", 1)[0]
        locked = pins(text, short)
        torch = locked.get("torch", "2.13.0")
        found = resolve(python, {"torch": torch} if args.upgrade else locked, torch)
        if found is None and not args.upgrade:
            print(f"Python {short}: the locked versions do not resolve together; resolving anew for it", file=sys.stderr)
            found = resolve(python, {"torch": torch}, torch)
        if found is None:
            return 1
        per_python[short] = found
    lines = []
    for name in sorted(set().union(*per_python.values())):
        seen = {short: found[name] for short, found in per_python.items() if name in found}
        if len(set(seen.values())) == 1:  # one version wherever it is needed
            lines.append(f"{name}=={next(iter(seen.values()))}\n")
        else:
            lines += [f'{name}=={v} ; python_version == "{short}"\n' for short, v in sorted(seen.items())]
    command = " ".join(["python scripts/lock.py"] + (["--upgrade"] if args.upgrade else [])
                       + [f"--python {pathlib.Path(p).name}" for p in (args.python or [])])
    LOCK.write_text(HEADER.format(command=command, extras=EXTRAS, pythons=", ".join(versions.values())) + "".join(lines))
    print(f"{LOCK.name}: {len(lines)} lines for Python {', '.join(per_python)}, torch=={per_python[next(iter(per_python))].get('torch')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
