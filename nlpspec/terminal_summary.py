"""The terminal summary of a run that ran nlpspec's cases: the tests that raised outside the checks,
the table of component × E-id (properties/summary.py), what the subject declared, what was observed
and not judged, and where the run stopped early. Its hooks are the plugin's: plugin.py imports them."""
from __future__ import annotations

from nlpspec.run_state import state


def pytest_terminal_summary(terminalreporter, config):
    run = state(config)
    records = [r for r in run.records if r["component"]]  # not an error outside any case: that has its line
    errors = [r for r in run.records if r["status"] == "error"]
    if errors:
        terminalreporter.ensure_newline()
        terminalreporter.write_line(f"nlpspec: {len(errors)} test(s) raised outside the checks (status error in "
                                    f"--nlpspec-report):")
        for r in errors:
            terminalreporter.write_line(f"  {r['nodeid']}: {r['message'].splitlines()[0][:200]}")
    if not records:
        return
    stopped = run.stopped_early()
    from nlpspec.properties.summary import declarations, observations, summary
    subjects = ", ".join(sorted({r["subject"] for r in records}))
    terminalreporter.section(f"nlpspec conformance: {subjects} ({run.device}, {run.dtype_name})")
    for line in summary(records):
        terminalreporter.write_line(line)
    declared = declarations(records)
    if declared:
        terminalreporter.write_line("declared by the subject (not drawn, not run, or set as it says):")
        for line in declared:
            terminalreporter.write_line(f"  {line}")
    notes = observations(records)
    if notes:
        terminalreporter.write_line("observed, not judged (where the spec leaves a value undefined, or a check "
                                    "cannot look), the subject:")
        for line in notes:
            terminalreporter.write_line(f"  {line}")
    if stopped:
        terminalreporter.write_line(stopped)
