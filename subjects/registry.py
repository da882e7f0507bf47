"""Finding a subject by name: a built-in, or `package.module:object` for a user's own."""
from __future__ import annotations

import importlib
import os
import sys

from .protocol import Subject, SubjectLoadError

BUILTINS = {
    "reference": "nlpspec.subjects.reference:SUBJECT",
    "torch": "nlpspec.subjects.torch_nn:SUBJECT",
    "hf": "nlpspec.subjects.hf:subject",
    "keras": "nlpspec.subjects.keras3:subject",
    "onnxruntime": "nlpspec.subjects.onnxruntime:subject",
    "jax": "nlpspec.subjects.jax_flax:subject",
}
EXTRAS = {"hf": "hf", "keras": "keras", "onnxruntime": "onnx", "jax": "jax"}  # built-in subject -> the extra it needs (pyproject)


def load_subject(name: str) -> Subject:
    """The subject called `name`: a built-in name, a mutant `zoo.NAME`, or `package.module:object`.

    The object is a `Subject`, or a callable with no arguments that returns one. The module is looked
    for as `python -m` would, the current directory first.
    """
    if name.startswith("zoo."):
        from .zoo import MUTANTS
        if name[4:] in MUTANTS:
            return MUTANTS[name[4:]].subject
        raise SubjectLoadError(f"unknown mutant {name!r}: the zoo holds {', '.join('zoo.' + m for m in MUTANTS)}")
    path = BUILTINS.get(name, name)
    if ":" not in path:
        raise SubjectLoadError(f"unknown subject {name!r}: the built-ins are {', '.join(BUILTINS)}; "
                               f"a subject of your own is given as package.module:object")
    module_name, _, attr = path.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:  # a subject of one's own, as `python -m` finds it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error of the user's module is reported, not raised
        raise SubjectLoadError(f"subject {name!r}: importing {module_name!r} failed: "
                               f"{type(exc).__name__}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise SubjectLoadError(f"subject {name!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Subject) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise SubjectLoadError(f"subject {name!r}: calling {path} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, Subject):
        raise SubjectLoadError(f"subject {name!r}: {path} is a {type(obj).__name__}, not an nlpspec.Subject")
    return obj
