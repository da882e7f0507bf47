"""The cell equations in the form PyTorch evaluates them: every step's input projected in one product
before the loop, and the products of all gates with the state stacked into one product per step.

Derived here from the article's equations (spec/recurrent.py), which stay what is printed and what a
single cell is checked against, by two identities of block matrices:
- a product with a block column splits by columns, W [a; b] = W[:, :rows(a)] a + W[:, rows(a):] b;
- products with one vector stack by rows, [A; B] v = [A v; B v] (and [A; B] v + [a; b] = [A v + a; B v + b]).
In each sum of a cell's equations, the product of a weight with the input x (W[:, H:] x) becomes a row block
of one product made for all steps before the loop (PROJECT), and each product of a weight with a state
(W[:, :H] h_{t-1}) a row block of the step's one product with that state (STACKED). A sum with one of each,
W[:, H:] x + W[:, :H] h_{t-1} + b, is a gate's pre-activation Z_k: its two blocks are added, its bias
joins the state's product (as torch's b_hh). What is left, the cell's equations with Z_k, P_k (an input's
block alone) and R_k (a state's block alone) in place of those terms, is one compiled equation whose
targets are the cell's quantities, the gates included.
Arrays as in spec/architectures.py: a sequence (B, T, n, 1), a state (B, H, 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from array_api_compat import array_namespace
from sympy import BlockMatrix, MatAdd, MatMul, MatrixSlice, MatrixSymbol

from .equation import Equation
from .oracle import compile_equation
from .recurrent import CELLS, STATE, H, I

_rows, _cols = sp.symbols("G K", integer=True, positive=True)  # a stack's rows, the vector's rows
_W, _b, _v = MatrixSymbol("W", _rows, _cols), MatrixSymbol("b", _rows, 1), MatrixSymbol("v", _cols, 1)
PROJECT = Equation("fused_cells.project", "The stacked input weights times the input: every step's projected "
                   "inputs in one product.", MatrixSymbol("P", _rows, 1), _W * _v)
STACKED = Equation("fused_cells.stacked", "The stacked state weights times the state, the stacked biases added: every "
                   "gate's product with the state in one product.", MatrixSymbol("R", _rows, 1), _W * _v + _b)


@dataclass(frozen=True)
class Block:
    """One row block of a stacked product: the step reads it as `name`; it is `weight` (a parameter or a
    column slice of one) times the vector (x, or the state `state`), plus `bias` (a gate's) if any.
    A sum that has both, W[:, H:] x + b + W[:, :H] h_{t-1}, is read as one block, the gate's
    pre-activation: a projected block and a stacked one of the same name, added before the step."""
    name: str
    weight: sp.MatrixExpr
    bias: MatrixSymbol | None = None
    state: str | None = None


@dataclass(frozen=True)
class FusedCell:
    """A cell's equations in the fused form: the blocks of its two products and the step that reads them."""
    kind: str
    projected: tuple[Block, ...]  # row blocks of the input's product, made before the loop; pre-activations first
    stacked: tuple[Block, ...]  # row blocks of the state's product, one product per state and step; likewise
    sliced: tuple[tuple[str, MatrixSlice], ...]  # weights the step multiplies itself (GRU: W_h[:, :H])
    step: Equation  # the cell's quantities from the blocks, the state and the sliced weights
    slices: tuple[MatrixSlice, ...]  # every column slice of a weight, and
    bounds: object  # (H, I) -> their integer bounds (row start, stop, column start, stop)


def split_columns(expr):
    """W [a; b] -> W[:, :rows(a)] a + W[:, rows(a):] b, wherever a weight multiplies a block column."""
    def is_block_product(e):
        return isinstance(e, MatMul) and len(e.args) == 2 and isinstance(e.args[1], BlockMatrix) \
            and e.args[1].blockshape[1] == 1

    def split(e):
        weight, column = e.args
        terms, start = [], sp.Integer(0)
        for part in column.blocks[:, 0]:
            stop = start + part.shape[0]
            terms.append(MatMul(weight[:, start:stop], part))
            start = stop
        return MatAdd(*terms)
    return expr.replace(is_block_product, split)


def terms(expr) -> list:
    """The terms of a (nested) sum."""
    return [t for a in expr.args for t in terms(a)] if isinstance(expr, MatAdd) else [expr]


def derive(kind: str) -> FusedCell:
    """The fused form of a cell's equations (see the module's docstring)."""
    states = {MatrixSymbol(f"{name}_prev", H, 1) for name in STATE[kind]}
    targets = {eq.lhs for eq in CELLS[kind]}
    x = MatrixSymbol("x", I, 1)
    projected, stacked = [], []

    def product_of(e, vectors):  # a weight (or a column slice of one) times one of the vectors
        return isinstance(e, MatMul) and len(e.args) == 2 and e.args[1] in vectors and \
            isinstance(e.args[0], (MatrixSymbol, MatrixSlice)) and \
            not e.args[0].atoms(MatrixSymbol) & (states | targets | {x})

    def fuse(e):
        if not isinstance(e, MatAdd):
            args = [fuse(a) for a in e.args]
            return e if args == list(e.args) else e.func(*args)
        found = [fuse(t) for t in terms(e)]
        products = [t for t in found if product_of(t, {x})]
        recurrent = [t for t in found if product_of(t, states)]
        biases = [t for t in found if isinstance(t, MatrixSymbol) and t not in states | targets]
        if len(products) != 1 and not recurrent:
            return e
        rest = [t for t in found if t not in products and t not in recurrent]
        if len(products) == 1:
            gate = len(recurrent) == 1  # W[:, H:] x + W[:, :H] h_{t-1} + b: the gate's pre-activation
            symbol = MatrixSymbol(f"Z_{len(projected)}" if gate else f"P_{len(projected)}", *e.shape)
            projected.append(Block(symbol.name, products[0].args[0]))
            if gate:
                bias = biases[0] if len(biases) == 1 else None
                stacked.append(Block(symbol.name, recurrent[0].args[0], bias, recurrent[0].args[1].name))
                rest, recurrent = [t for t in rest if t != bias], []
            rest = [symbol] + rest
        for t in recurrent:
            symbol = MatrixSymbol(f"R_{len(stacked)}", *t.shape)
            stacked.append(Block(symbol.name, t.args[0], state=t.args[1].name))
            rest.append(symbol)
        return MatAdd(*rest) if len(rest) > 1 else rest[0]

    values = {}
    for eq in CELLS[kind]:
        values[eq.lhs] = fuse(split_columns(eq.rhs)).xreplace(values)
    exprs = tuple(values[eq.lhs] for eq in CELLS[kind])
    left = sorted({s for e in exprs for s in e.atoms(MatrixSlice)}, key=str)  # slices the step multiplies itself
    named = {s: MatrixSymbol(f"S_{k}", *s.shape) for k, s in enumerate(left)}
    step = Equation(f"{kind}.fused_step", f"One step of {kind} from its projected inputs and stacked products.",
                    tuple(eq.lhs for eq in CELLS[kind]), tuple(e.xreplace(named) for e in exprs))
    slices = tuple(sorted({s for b in projected + stacked for s in b.weight.atoms(MatrixSlice)} | set(left), key=str))
    bounds = sp.lambdify((H, I), [(s.rowslice[0], s.rowslice[1], s.colslice[0], s.colslice[1]) for s in slices])

    if len({b.state for b in stacked if b.name.startswith("Z")}) > 1:
        raise NotImplementedError(f"{kind}: gates on two states (stepper adds one state's product to the inputs')")

    def gates_first(blocks):
        return tuple(sorted(blocks, key=lambda b: not b.name.startswith("Z")))
    return FusedCell(kind, gates_first(projected), gates_first(stacked), tuple((named[s].name, s) for s in left),
                     step, slices, bounds)


fused = cache(derive)  # fused(kind): derived once per cell


def stepper(kind: str, params: dict, xs, h0):
    """The cell of `kind` over the sequence xs (B, T, I, 1) in the fused form: every step's projected
    inputs made now, in one product; returns step(k, state) -> the cell's quantities at step k, with
    one product per state."""
    cell = fused(kind)
    xp = array_namespace(xs, h0)
    bounds = dict(zip(cell.slices, cell.bounds(h0.shape[-2], xs.shape[-2])))

    def value(expr):  # a parameter, or a column slice of one
        if isinstance(expr, MatrixSlice):
            r0, r1, c0, c1 = bounds[expr]
            return params[expr.parent.name][..., r0:r1, c0:c1]
        return params[expr.name]

    def stack(weights):
        """The weights one above the other, stored as the transpose of a contiguous array: a batch's
        product h Wᵀ then reads Wᵀ row by row (BLAS's NN form; NT took 1.2 to 2 times as long here)."""
        return xp.matrix_transpose(xp.concat([xp.matrix_transpose(w) for w in weights], axis=-1))

    def rows(blocks):  # each block's rows in its stack
        ends = [0]
        for b in blocks:
            ends.append(ends[-1] + value(b.weight).shape[-2])
        return [(b.name, a, z) for b, a, z in zip(blocks, ends, ends[1:])]

    projected_rows = rows(cell.projected)
    weights = stack([value(b.weight) for b in cell.projected])
    projected = compile_equation(PROJECT)(W=weights, v=xs)  # (B, T, rows, 1): every step at once
    gates = {name for name, _, _ in projected_rows if name.startswith("Z")}
    gate_rows = sum(z - a for name, a, z in projected_rows if name in gates)  # the first rows of both stacks
    alone = [(name, a, z) for name, a, z in projected_rows if name not in gates]  # P_k
    stacked = []  # per state: its stacked weights and biases, and where each block is
    for state in STATE[kind]:
        blocks = [b for b in cell.stacked if b.state == f"{state}_prev"]
        if blocks:
            biases = [params[b.bias.name] if b.bias is not None else 0 * value(b.weight)[..., :1] for b in blocks]
            stacked.append((state, stack([value(b.weight) for b in blocks]), xp.concat(biases, axis=-2),
                            [(name, name in gates, a, z) for name, a, z in rows(blocks)]))
    equation = compile_equation(cell.step)
    product, step = compile_equation(STACKED).looped(), equation.looped()  # shapes checked at the first step
    fixed = {name: stack([value(s)]) for name, s in cell.sliced}
    fixed |= {name: params[name] for name in equation.input_names if name in params}
    read = [name for name in STATE[kind] if f"{name}_prev" in equation.input_names]  # states the step reads itself
    names = [t.name for t in cell.step.targets]

    def at(k: int, state: dict) -> dict:
        now = projected[:, k]
        args = fixed | {f"{name}_prev": state[name] for name in read} | {n: now[..., a:z, :] for n, a, z in alone}
        for name, W, b, blocks in stacked:
            R = product(W=W, b=b, v=state[name])
            Z = now[..., :gate_rows, :] + R[..., :gate_rows, :]  # the pre-activations: input and state parts
            args |= {block: (Z if gate else R)[..., a:z, :] for block, gate, a, z in blocks}
        return dict(zip(names, step(**args)))
    return at
