"""nlpspec: the article's equations as an executable specification, and the suite that holds an
implementation to them.

    pytest --pyargs nlpspec --subject mypkg.mod:SUBJECT      # verify a subject of one's own

    from nlpspec import Declaration, Subject, check_subject, parametrize_with_checks

The names below are imported on first use, so that the pytest plugin (registered for every pytest
run of the environment) costs nothing where nlpspec's checks are not collected.
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "Subject": "nlpspec.subjects.protocol",
    "Declaration": "nlpspec.subjects.protocol",
    "load_subject": "nlpspec.subjects.registry",
    "SubjectLoadError": "nlpspec.subjects.registry",
    "check_subject": "nlpspec.properties.runner",
    "Case": "nlpspec.properties.case",
    "cases": "nlpspec.properties.case",
    "parametrize_with_checks": "nlpspec.case_collection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nlpspec' has no attribute {name!r}")
