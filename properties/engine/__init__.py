"""The engine every family runs on: what a component and a check are (component.py, check.py),
drawing (strategies.py), driving a subject and checking what comes back (harness.py, clock.py),
the one tolerance rule (tolerance.py, rounding.py), and failures as objects (failures.py)."""
