"""The documentation site, built once per test session for the tests that read it
(tests/test_site.py, tests/test_site_browser.py, in one xdist group)."""
import json

import pytest
import torch
from hypothesis import settings

from docs.build import build
from properties.runner import check_subject
from subjects import load_subject


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site as `python -m docs` writes it, with a conformance page from two small reports."""
    out = tmp_path_factory.mktemp("site")
    reports = []
    for name in ("reference", "torch"):
        subject = load_subject(name)
        records = check_subject(subject, "cpu", torch.float64, settings(settings.get_profile("ci"), max_examples=3),
                                components=["layernorm", "ffn"])
        path = out.parent / f"{name}.json"
        path.write_text(json.dumps({"subject": name, "version": subject.version, "device": "cpu", "dtype": "float64",
                                    "records": [r.as_dict() for r in records]}))
        reports.append(path)
    pages = build(out, reports)
    return out, pages
