"""The --nlpspec-report file: what it holds besides the checks' records (a record for a test that
raised outside any check, the versions) and how it is written: replaced atomically (a temp file in
its folder, then os.replace) every time it changes, so that a reader never sees half a file and a
run that dies leaves what it had finished."""
from __future__ import annotations

import json
import os
import pathlib
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version


def unwritable(path: str) -> str:
    """Why no report can be written at `path` (its folder is made where missing), or ''."""
    where = pathlib.Path(path)
    try:
        where.absolute().parent.mkdir(parents=True, exist_ok=True)  # artefacts/reports/, as .ci/run names it
        if where.is_dir():
            return f"--nlpspec-report {path}: is a folder, not a file"
        with tempfile.TemporaryFile(dir=where.absolute().parent):
            pass
    except OSError as exc:
        return f"--nlpspec-report {path}: cannot write there ({exc.strerror or exc}: {exc.filename or path})"
    return ""


def described(exc: BaseException) -> str:
    """'Type: message', even where the exception's __str__ raises (failures.said)."""
    from nlpspec.properties.engine.failures import said
    text = said(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def plain(data: dict) -> dict:
    """`data` as plain JSON types: pytest-xdist sends records between processes and refuses a str
    subclass (torch's version) or a dtype."""
    return json.loads(json.dumps(data, default=str))


def error_record(nodeid: str, message: str, exception: str = "", case=None) -> dict:
    """The record of a test that failed without a record of its own (the suite raised, the process
    running it died, or a test of one's own failed): status `error`, shaped as a check's record."""
    found = {"subject": "", "component": "", "check": "", "eids": [], "status": "error", "message": message,
             "exception": exception, "nodeid": nodeid, "variant": "", "options": {}, "option_set": "",
             "examples": 0, "failures": [], "version": ""}
    if case is not None:
        found |= {"subject": case.subject.name, "version": case.subject.version, "component": case.component.name,
                  "check": case.check.name, "eids": list(case.eids), "options": case.options}
    found["id"] = f"{found['component']}-{found['check']}" if case is not None else nodeid
    return plain(found)


def versions() -> dict:
    """nlpspec's, Python's and the installed torch's, Hypothesis' and pytest's versions."""
    from nlpspec import __version__
    found = {"nlpspec": __version__, "python": platform.python_version()}
    for name in ("torch", "hypothesis", "pytest"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


class ReportFile:
    """The file at `path`, rewritten whole at each write; each record is made into JSON once."""

    def __init__(self, path: str):
        self.path = pathlib.Path(path).absolute()
        self.lines: list[str] = []  # the JSON of the records written so far

    def write(self, head: dict, records: list[dict]):
        """`head`'s fields, then "records"; through a temp file, so the file is always whole."""
        self.lines += [json.dumps(r, default=str) for r in records[len(self.lines):]]
        body = ",\n".join(self.lines[:len(records)])
        text = json.dumps(head, indent=1, default=str)[:-2] + f',\n "records": [\n{body}\n ]\n}}\n'
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(temp, self.path)
        except BaseException:
            pathlib.Path(temp).unlink(missing_ok=True)
            raise
