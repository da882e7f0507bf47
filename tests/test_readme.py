"""README is a front page that says what the suite does: its contract table is the one the suite prints,
its worked example is examples/my_lstm.py, its links lead to the guide's pages; the guide's worked
adapter (docs/guide/authoring.md) is the built-in one, verbatim."""
import inspect
import re
from pathlib import Path

import pytest

from nlpspec.properties import contract
from optional import require

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
GUIDE = ROOT / "docs" / "guide"


def test_the_contract_table_is_the_suites():
    shown = re.search(r"<!-- contract -->\n(.*?)<!-- /contract -->", README, re.S)
    assert shown and shown.group(1) == contract.markdown(), "README's table differs: paste " \
        "`python -m nlpspec.properties.contract` between its markers"


def test_the_worked_adapter_is_the_built_in_one_verbatim():
    require("transformers")
    from nlpspec.subjects import hf
    guide = (GUIDE / "authoring.md").read_text()
    for fn in (hf.placed, hf.copy, hf.gpt2_config, hf.load_gpt2_attention, hf.causal_call, hf.gpt2_attention_builder,
               hf.gpt2_block_builder):
        assert inspect.getsource(fn).rstrip() in guide, f"the guide's worked adapter differs from hf.{fn.__name__}"
    assert repr(hf.GPT2_SETS).replace("'", '"') in " ".join(guide.split()), "the guide's GPT2_SETS differ"


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 250


def test_the_worked_example_is_examples_my_lstm():
    shown = re.search(r"```python\n(import torch\n.*?)```", README, re.S)
    assert shown and shown.group(1) in (ROOT / "examples" / "my_lstm.py").read_text()


def test_every_guide_page_is_linked_from_readme_and_every_link_resolves():
    linked = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert all((ROOT / path).exists() for path in linked), [p for p in linked if not (ROOT / p).exists()]
    assert {f"docs/guide/{page.name}" for page in GUIDE.glob("*.md")} <= set(linked)
