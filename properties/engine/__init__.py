"""The engine every family runs on: what a component and a check are (component.py, check.py),
drawing (strategies.py), the harness a check drives a subject with (harness.py: the case, cases.py;
build, call and form, driver.py, clock.py; the oracle side, oracle.py; the verdict, verdict.py and
within.py; what explains a failure, precision.py and diagnosis.py), the one tolerance rule
(tolerance.py, rounding.py), and failures as objects (failures.py)."""
