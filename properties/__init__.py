"""Properties: Hypothesis strategies, the invariants, and the one tolerance rule.

`properties.runner.check_subject(subject)` runs every check outside pytest and returns records.
"""
if __name__ != "nlpspec.properties":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.properties, not {__name__}: the checkout's properties/ is the package nlpspec.properties")
