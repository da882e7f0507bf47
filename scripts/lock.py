#!/usr/bin/env python3
"""Writes constraints.txt, the project's lock: the exact version of every package that
`pip install -c constraints.txt -e '.[test,hf,keras]'` installs beside torch, as pip resolves it.

    python scripts/lock.py             # keep the versions locked now; add what the extras now need, drop the rest
    python scripts/lock.py --upgrade   # resolve anew, each package at its newest release (torch stays as locked)

Nothing is installed: pip resolves with --dry-run --ignore-installed, as in a fresh virtual environment
of the Python that runs this script (CPython 3.11 for the lock committed). An upgrade is a deliberate
commit of the file this writes, after the suite passes on it.
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
EXTRAS = "test,hf,keras"
HEADER = """\
# The project's lock: the exact version of each package that the project's own installs take, so that a
# fresh machine with Python 3.11 gets the same toolchain every time. README's quick start, the test
# extra's install and .ci/run all install with it:
#   pip install -c constraints.txt -e '.[test]'
#   pip install -c constraints.txt -e '.[hf,keras]'      # the subjects' extras, torch unchanged
# torch==2.13.0 also keeps pip from fetching a multi-GB CUDA build where no GPU is.
# Written by scripts/lock.py ({command}) on CPython {python}: the packages of
# '.[{extras}]' and what they need. Upgrades are deliberate commits: run `python scripts/lock.py --upgrade`,
# run the suite on the new versions, commit this file.
"""


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if match := re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*(\S+)", line):
            found[canonical(match.group(1))] = match.group(2)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="resolve anew, torch alone held at its locked version")
    args = parser.parse_args(argv)
    locked = pins(LOCK.read_text()) if LOCK.exists() else {}
    torch = locked.get("torch", "2.13.0")
    held = {"torch": torch} if args.upgrade else locked
    with tempfile.TemporaryDirectory() as tmp:
        seed, report = pathlib.Path(tmp, "seed.txt"), pathlib.Path(tmp, "report.json")
        seed.write_text("".join(f"{name}=={version}\n" for name, version in sorted(held.items())))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                        "--report", str(report), "-c", str(seed), f"torch=={torch}", f".[{EXTRAS}]"],
                       cwd=ROOT, check=True)
        resolved = json.loads(report.read_text())["install"]
    versions = {}
    for item in resolved:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if canonical(name) != "nlpspec":
            versions[canonical(name)] = version.split("+", 1)[0]  # 2.13.0+cpu: the same release as PyPI's 2.13.0
    command = "python scripts/lock.py" + (" --upgrade" if args.upgrade else "")
    python = ".".join(map(str, sys.version_info[:3]))
    body = "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))
    LOCK.write_text(HEADER.format(command=command, python=python, extras=EXTRAS) + body)
    print(f"{LOCK.name}: {len(versions)} packages, torch=={versions.get('torch')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
