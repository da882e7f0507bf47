"""The oracle's kernels (spec/kernels.py): written once on the array API, bound to NumPy (the printer's
namespace) and to torch (spec/torch_oracle.py), the two bindings differing only where stated; and the
spec's modules importing one another without a cycle."""
import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from nlpspec.spec.kernels import Kernels
from nlpspec.spec.printer import NAMESPACE as NUMPY
from nlpspec.spec.torch_oracle import NAMESPACE as TORCH
from nlpspec.spec.torch_oracle import TorchKernels

pytestmark = pytest.mark.selftest
SPEC = Path(__file__).resolve().parent.parent / "spec"
rng = np.random.default_rng(0)
A = rng.standard_normal((3, 5, 7)) * 3
HIDDEN = rng.integers(0, 2, (5, 7)).astype(bool)
CALLS = {  # each kernel of the printed code, on arguments of its kind
    "_sigmoid": (A,), "_tanh": (A,), "_softmax_rows": (A,), "_softmax_columns": (A,), "_relu": (A,), "_gelu": (A,),
    "_gelu_tanh": (A,), "_layernorm": (A, rng.standard_normal((1, 7)), rng.standard_normal((1, 7)), 1e-5),
    "_rmsnorm": (A, rng.standard_normal((1, 7)), 1e-6),  # spec/transformer.py's own (kernels.kernel)
    "_mask_fill": (A, HIDDEN), "_positional": (A,), "_matmul": (A, np.swapaxes(A, -1, -2)),
    "_chain": (A, np.swapaxes(A, -1, -2), A[:, :, :2]), "_causal_hidden": (5, 7, 1),
    "_block": ([[A[:, :, :3], A[:, :, 3:]], [A[0, :2, :3], A[1, :2, 3:]]],),  # batch axes (3,), () and () broadcast
}
EXACT = {"_block", "_mask_fill", "_causal_hidden", "_relu"}  # no arithmetic: the same bits in both libraries


def on_torch(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return [on_torch(v) for v in value] if isinstance(value, list) else value


def test_both_oracles_call_the_same_kernels():
    assert NUMPY.keys() - {"numpy"} == TORCH.keys() - {"numpy"} == set(CALLS) | {"_constant"}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_kernel_gives_the_same_value_on_numpy_and_on_torch(name):
    """Bit for bit where a kernel only moves values; to the tolerance rule's float64 floor elsewhere
    (each library has its own exp, tanh, erf and BLAS)."""
    ours = NUMPY[name](*CALLS[name])
    theirs = TORCH[name](*(on_torch(v) for v in CALLS[name])).numpy()
    if name in EXACT:
        np.testing.assert_array_equal(theirs, ours)
    else:
        floor = 8 * np.finfo(float).eps * max(1.0, float(np.nanmax(np.abs(ours))))
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=floor)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(set(CALLS) - {"_causal_hidden"}))
def test_each_kernel_computes_in_its_operands_dtype_on_torch(name, dtype):
    """As the NumPy oracle does (tests/test_spec.py): the torch oracle gives the gradient's baseline."""
    args = [v.to(getattr(torch, dtype)) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for v in (on_torch(a) for a in CALLS[name])]
    if name == "_block":
        args = [[[b.to(getattr(torch, dtype)) for b in row] for row in args[0]]]
    assert TORCH[name](*args).dtype == getattr(torch, dtype)


def test_torch_runs_its_own_operation_for_the_stated_kernels_only():
    """spec/kernels.py's kernels are written once; the torch binding replaces these, each for the
    reason its comment states (one torch operation: its backward, and the rounding model's operands),
    and hooks the EvaluationContext's fused forms into the products and LayerNorm. A new override belongs here."""
    overridden = {name for name, value in vars(TorchKernels).items() if callable(value) and hasattr(Kernels, name)}
    assert overridden == {"sizes_device", "sigmoid", "relu", "softmax", "softmax_rows", "mask_fill", "matmul", "layernorm",
                          "added"}


def test_a_kernel_a_spec_module_adds_reaches_both_bindings_and_the_torch_forms():
    """spec.kernels.kernel: a function written once on the array API, added after the namespaces were
    bound (as spec/transformer.py adds RMSNorm's), is in both, computes in its operands' library, and the
    torch binding runs the EvaluationContext's form of its name where one is given."""
    from nlpspec.spec import kernels
    from nlpspec.spec.kernels import EvaluationContext, kernel

    def _test_twice(k, a):
        return a * k.scalar(2, a)
    try:
        kernel(_test_twice)
        assert NUMPY["__test_twice"](A).dtype == A.dtype and (NUMPY["__test_twice"](A) == 2 * A).all()
        assert torch.equal(TORCH["__test_twice"](torch.from_numpy(A)), torch.from_numpy(2 * A))
        form = EvaluationContext(forms={"_test_twice": lambda a: a * 0 + 7})
        assert (form.run(TORCH["__test_twice"], torch.from_numpy(A)) == 7).all()
        with pytest.raises(ValueError, match="exists already"):
            kernel(_test_twice)
    finally:
        kernels._ADDED.pop("__test_twice", None)
        for _, names in kernels._BINDINGS:
            names.pop("__test_twice", None)


def spec_imports() -> dict[str, set[str]]:
    """spec's module -> the spec modules it imports, at module level or inside a function."""
    modules = {p.stem for p in SPEC.glob("*.py")}
    graph = {}
    for module in modules:
        found = set()
        for node in ast.walk(ast.parse((SPEC / f"{module}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:  # from . import positional: the module; from . import CATALOGUE: the package
                    found |= {a.name if a.name in modules else "__init__" for a in node.names}
        graph[module] = found & modules - {module}
    return graph


def test_the_spec_s_modules_import_one_another_without_a_cycle():
    graph, done, path = spec_imports(), set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join(path[path.index(module):] + [module])}"
        if module in done:
            return
        path.append(module)
        for other in sorted(graph[module]):
            visit(other)
        path.pop()
        done.add(module)
    for module in sorted(graph):
        visit(module)
    assert "oracle" not in graph["torch_oracle"] and "torch_oracle" in graph["oracle"]


def test_an_evaluation_context_given_to_a_compiled_equation_is_the_rounding_and_forms_it_applies():
    """spec.kernels.EvaluationContext: the caller's rounding and fused forms, for one equation
    (context=…) or a whole composition (run, applied), and the plain context again after it."""
    from nlpspec.spec import CATALOGUE, compile_equation
    from nlpspec.spec.kernels import EvaluationContext
    eq = CATALOGUE["layernorm"]
    arrays = {s.name: rng.standard_normal((2, 3, 4) if s.name == "x" else (1, 4)) for s in eq.inputs}
    seen = []

    def halved(a):
        seen.append(a.shape)
        return a / 2
    expected = EvaluationContext(rounding=halved).run(compile_equation(eq), **arrays)
    assert len(seen) == len(arrays)
    np.testing.assert_array_equal(expected, compile_equation(eq)(**{k: v / 2 for k, v in arrays.items()}))
    np.testing.assert_array_equal(compile_equation(eq)(context=EvaluationContext(rounding=halved), **arrays), expected)
    assert len(seen) == 2 * len(arrays) and EvaluationContext.current() == EvaluationContext()

    def layernorm(x, gamma, beta, eps):
        return x * 0 + 7
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    context = EvaluationContext(rounding=halved, forms={"layernorm": layernorm})
    assert (context.run(compile_equation(eq), **tensors) == 7).all()
    with context.applied():
        assert EvaluationContext.current() == context
    assert EvaluationContext.current() == EvaluationContext()
