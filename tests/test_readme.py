"""README's subject author's guide says what the suite does: its contract table is the one the suite
prints, and its worked adapter is the built-in one, verbatim."""
import inspect
import re
from pathlib import Path

import pytest

from nlpspec.properties import contract
from optional import require

pytestmark = pytest.mark.selftest
README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_contract_table_is_the_suites():
    shown = re.search(r"<!-- contract -->\n(.*?)<!-- /contract -->", README, re.S)
    assert shown and shown.group(1) == contract.markdown(), "README's table differs: paste " \
        "`python -m nlpspec.properties.contract` between its markers"


def test_the_worked_adapter_is_the_built_in_one_verbatim():
    require("transformers")
    from nlpspec.subjects import hf
    for fn in (hf.placed, hf.copy, hf.gpt2_config, hf.load_gpt2_attention, hf.causal_call, hf.gpt2_attention_builder,
               hf.gpt2_block_builder):
        assert inspect.getsource(fn).rstrip() in README, f"README's worked adapter differs from hf.{fn.__name__}"
    assert repr(hf.GPT2_SETS).replace("'", '"') in " ".join(README.split()), "README's GPT2_SETS differ"
