"""Components are described by traits (properties/engine/component.py): no check and no part of the
engine chooses what to do by a component's name, and describing them so changed no (component, check)
pair of the suite."""
import ast
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpspec.properties.engine.component import kind_for
from nlpspec.properties.suite import COMPONENTS, generate

pytestmark = pytest.mark.selftest
ROOT = pathlib.Path(__file__).parent.parent
PAIRS = pathlib.Path(__file__).parent / "data" / "suite_pairs.tsv"  # generate()'s pairs at ed45026, before traits
COMPONENT_NAMES = {"component", "c", "cell_component"}  # what properties/ calls a Component


def is_component(node) -> bool:
    """`component`, `c`, or `<anything>.component`."""
    return (isinstance(node, ast.Name) and node.id in COMPONENT_NAMES
            or isinstance(node, ast.Attribute) and node.attr == "component")


def is_name(node, aliases) -> bool:
    """A component's name: `<component>.name`, a variable assigned one, or an f-string holding one."""
    if isinstance(node, ast.Attribute) and node.attr == "name" and is_component(node.value):
        return True
    if isinstance(node, ast.Name) and node.id in aliases:
        return True
    return isinstance(node, ast.JoinedStr) and any(is_name(v.value, aliases) for v in node.values
                                                   if isinstance(v, ast.FormattedValue))


def written(node) -> bool:
    """A string written in the code, or a tuple, list or set of them."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(written(e) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def dispatches(tree: ast.AST):
    """(line, what) for each use of a component's name to choose: compared with, or tested for
    membership in, names written in the code; a str method called on it; a table indexed by it; and a
    `component` compared with a string. A name matched against one a user gives (a command line's
    filter, a check's id) selects, it does not dispatch."""
    found = {found for scope in ast.walk(tree) if isinstance(scope, (ast.Module, ast.FunctionDef))
             for found in dispatches_in(scope)}
    return sorted(found)


def dispatches_in(scope):
    """dispatches() within one function (or module), a variable assigned a name there its alias."""
    assigned = [node for node in ast.walk(scope) if isinstance(node, ast.Assign) and is_name(node.value, set())]
    aliases = {target.id for node in assigned for target in node.targets if isinstance(target, ast.Name)
               and isinstance(scope, ast.FunctionDef)}
    for node in ast.walk(scope):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_name(s, aliases) for s in sides) and any(written(s) for s in sides):
                yield node.lineno, "compares a component's name with names written in the code"
            bare = any(isinstance(s, ast.Name) and s.id in COMPONENT_NAMES for s in sides)
            if bare and any(written(s) for s in sides):
                yield node.lineno, "compares a component with a string"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_name(node.func.value, aliases):
            yield node.lineno, f"calls str.{node.func.attr} on a component's name"
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and is_name(node.slice, aliases):
            yield node.lineno, f"looks a component's name up in {node.value.id}"


def found_in(source: str) -> list:
    return [what for _, what in dispatches(ast.parse(source))]


BEFORE = [  # dispatches as properties/ had them at ed45026, one of each form
    'def yield_checks(component):\n    if component.name == "lstm.cell":\n        yield HIGHWAY\n',
    'def yield_checks(component):\n    name = component.name\n    if name in ("attention", "mha"):\n        yield P\n',
    'def yield_checks(component):\n    if component.name.endswith(".layers"):\n        yield U\n',
    'def check(h, data):\n    if h.component.name == "mha":\n        pass\n',
    'def lengths(h, inputs):\n    return inputs[QUERIES[h.component.name]].shape[1]\n',
    'def needing(**by):\n    return lambda component: by.get(component.name.replace(".", "_"), ())\n',
    'def check(h, data):\n    component = BY_NAME[f"{h.component.name}.layer"]\n',
    'def hidden_keys(component: str, kind, inputs):\n    if component == "attention":\n        return None\n',
]


@pytest.mark.parametrize("source", BEFORE)
def test_the_detector_finds_a_dispatch_on_a_name(source):
    assert found_in(source)


@pytest.mark.parametrize("source", [
    'def check(h):\n    h.unjudged(f"no option set of {component.name} runs it")\n',  # a message
    'def check(h):\n    fn = h.run.subject.builders[h.component.name]\n',  # the subject's own table of builders
    'def check(h):\n    cell = BY_NAME[h.component.cell]\n',  # a trait naming another component
    'def run(cases, components):\n    return [c for c in cases if c.component.name in components]\n',  # a filter
])
def test_the_detector_lets_messages_and_subject_lookups_be(source):
    assert not found_in(source)


def test_no_check_and_no_part_of_the_engine_dispatches_on_a_component_name():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in sorted((ROOT / "properties").rglob("*.py"))
             for line, what in dispatches(ast.parse(path.read_text(), str(path)))]
    assert not found, "describe the component by a trait (engine/component.py) instead:\n" + "\n".join(found)


def test_the_suite_yields_the_pairs_it_yielded_before_traits():
    before = [tuple(line.split("\t")) for line in PAIRS.read_text().splitlines()]
    now = [(component.name, check.name) for component, check in generate()]
    assert now == before, ("the (component, check) pairs changed; a new component adds its rows to "
                           f"{PAIRS.relative_to(ROOT)}")


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_the_named_components_are_in_the_suite(name):
    component = COMPONENTS[name]
    for other in (component.layer, component.cell):
        assert other is None or other in COMPONENTS, f"{name} names {other}, not a component"


@pytest.mark.parametrize("name", sorted(n for n, c in COMPONENTS.items() if c.full_size is None))
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_roles_are_inputs_the_component_draws(name, data):
    component = COMPONENTS[name]
    _, inputs = component.draw(data, kind_for(component))
    roles = [component.queries, *component.keys, *component.masks, component.source, component.target,
             component.memory]
    assert {r for r in roles if r is not None} <= set(inputs), f"{name}: roles {roles}, inputs {sorted(inputs)}"
