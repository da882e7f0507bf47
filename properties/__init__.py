"""Properties: Hypothesis strategies, the invariants, and the one tolerance rule.

`properties.runner.check_subject(subject)` runs every check outside pytest and returns records.
"""
