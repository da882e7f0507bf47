"""torch.compile as option sets of subject "torch": each component runs also as the named option
set "compiled" ({"compile": "inductor"}: `torch.compile(fn, backend=inductor, dynamic=True,
fullgraph=True)` of the very callable the eager sets run, forward and gradient), with dynamo's
settings as a user gets them, but for the number of recompiles allowed (RECOMPILES).

The builder still builds a fresh module per example; it is the callable that is compiled, behind a
frame of its own per build (own_frame), so that each build compiles once, and, with `dynamic=True`,
not again for a new batch or sequence length but for the 0/1 specialisation (a size of 1 compiles
once more). A frame shared by every build would reuse a graph where the structure repeats, but it
gathers one entry per module size drawn (Python ints dynamo guards on: nn.LayerNorm's
normalized_shape, nn.MultiheadAttention's embed_dim and num_heads) until dynamo's recompile limit
fails the run; sharing saved 18 of 31 compiles of layernorm's compiled oracle check on 30 examples
(5.6 s against 9.6 s) and 3 of 16 of encoder.layer's on 15 (13.1 s against 15.5 s).

Credit only for compiled code: the backend counts each run of a graph inductor compiled, a call
that ran none raises NotCompiled, and fullgraph makes a graph break (dynamo running part of the call
eagerly) the same error, which the suite reports as the subject's failure. The components that
torch.compile cannot compile whole (NOT_COMPILED, as measured: nn.RNN, nn.LSTM, nn.GRU run eagerly)
offer the set with a declaration saying why, and it runs in no profile.

Compiling costs seconds to tens of seconds per component (docs/guide/subjects.md, "torch.compile"),
so the compiled sets run in the thorough profile; the other profiles run the oracle check of SAMPLED
only (declared: the summary says which).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect

import torch

from .protocol import Declaration, named_sets, option_label

COMPILED = {"compile": "inductor"}
# components whose compiled set runs in every profile, their oracle check only (the others: thorough).
# Measured (cold inductor cache, dev profile): the oracle check compiled costs mha 120 s, attention 95 s,
# encoder.layer 71 s, layernorm 21 s; encoder.layer compiles nn.MultiheadAttention and SDPA within it
SAMPLED = ("layernorm", "encoder.layer")
SAMPLED_CHECKS = ("oracle",)
# what torch.compile (fullgraph) cannot compile whole, as measured (torch 2.13.0): why, in words
EAGER = ("torch.compile runs this eagerly, nothing compiled: dynamo does not trace nn.RNN, nn.LSTM, nn.GRU "
         "(\"Attempted to wrap RNN, GRU, or LSTM\"; without fullgraph it compiles only the adapter's reshapes)")
NOT_COMPILED = {**{f"{kind}.{what}": EAGER for kind in ("rnn", "lstm", "gru") for what in ("layers", "layers_padded",
                                                                                          "seq2seq")},
                "transformer": "torch.compile cannot compile nn.Transformer whole: dynamo breaks the graph at a "
                               "function it skips (\"Attempted to call function marked as skipped\")"}
# each shape a build's calls specialise on (a length or batch of 1) is an entry of that build's frame
# (own_frame): more than dynamo's default 8 allowed, past which fullgraph raises
RECOMPILES = 64


class NotCompiled(RuntimeError):
    """A call of a compiled option set in which no compiled graph ran: it ran eagerly."""


GRAPHS = {"compiled": 0, "ran": 0}  # graphs inductor compiled, runs of them (this process)


def counting_inductor(gm, example_inputs):
    """Dynamo's backend: inductor's compile_fx, each compiled graph counted when it runs."""
    from torch._inductor.compile_fx import compile_fx
    GRAPHS["compiled"] += 1
    inner = compile_fx(gm, example_inputs)

    def run(*args):
        GRAPHS["ran"] += 1
        return inner(*args)
    return run


BACKENDS = {"inductor": counting_inductor}


def own_frame(fn):
    """fn called from a function whose code object is its own. Dynamo keeps the graphs it compiles
    per code object and its recompile limit counts them there: the frame every build of a component
    shares (an adapter's closure) would gather one entry per structure drawn until, past the limit,
    fullgraph raises FailOnRecompileLimitHit, a failure of the suite's making (measured: the compiled
    nn.TransformerEncoder's checks, 15 examples each, in one process). Each build's graphs are its own."""
    def call(**inputs):
        return fn(**inputs)
    call.__code__ = call.__code__.replace()  # a new code object, so a new cache
    return call


def compiled(builder):
    """A builder taking also `compile` (a backend of BACKENDS, or None: eager): its callable compiled
    whole (fullgraph: a graph break, where dynamo would run a part eagerly, is an error) with dynamic
    shapes, each call checked to have run a compiled graph."""
    def build(params, compile=None, **options):
        fn = builder(params, **options)
        if compile is None:
            return fn
        fast = torch.compile(own_frame(fn), backend=BACKENDS[compile], dynamic=True, fullgraph=True)

        def run(**inputs):
            before = GRAPHS["ran"]
            try:
                with torch._dynamo.config.patch(recompile_limit=RECOMPILES):
                    out = fast(**inputs)
            except torch._dynamo.exc.Unsupported as exc:
                raise NotCompiled(f"torch.compile(backend={compile!r}, fullgraph=True) cannot compile this call "
                                  f"whole: dynamo would run part of it eagerly ({str(exc).splitlines()[0]})") from exc
            except RuntimeError as exc:  # dynamo did not try (under a TorchDispatchMode, or the code skipped since)
                if "found no compiled frames" not in str(exc):
                    raise
                raise NotCompiled(f"torch.compile(backend={compile!r}) ran this call eagerly: dynamo did not compile "
                                  f"it ({str(exc).splitlines()[0]})") from exc
            if GRAPHS["ran"] == before:
                raise NotCompiled(f"torch.compile(backend={compile!r}) ran this call eagerly: dynamo produced "
                                  f"no graph, so nothing compiled was checked")
            return out
        return run
    # the builder's keywords, and compile (what the suite validates an option set against)
    known = list(inspect.signature(builder).parameters.values())
    at = next((k for k, p in enumerate(known) if p.kind == p.VAR_KEYWORD), len(known))
    build.__signature__ = inspect.Signature(known[:at] + [inspect.Parameter("compile", inspect.Parameter.KEYWORD_ONLY,
                                                                            default=None)] + known[at:])
    build.__doc__, build.__name__ = builder.__doc__, getattr(builder, "__name__", "build")
    return build


@functools.cache
def no_cpu_compiler() -> str:
    """Why inductor cannot compile for the CPU here ("" if it can): its CPU code is C++, built by the
    compiler it finds (torch._inductor.config.cpp.cxx, else g++); a machine without one (a newcomer's,
    README's quick start) cannot run the compiled sets on the CPU."""
    from torch._inductor import cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler
    try:
        cpp_builder.get_cpp_compiler()
    except InvalidCxxCompiler as exc:  # anything else is a fault to see, not a missing compiler
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return ""


def declaration(component: str, eager=None):
    """The declaration of a component's option sets: `eager`'s (a Declaration, a function of the
    options, or None) for the eager sets; for the compiled set, where it runs."""
    def declare(options):
        if not options.get("compile"):
            return eager(options) if callable(eager) else eager or Declaration()
        if component in NOT_COMPILED:
            return Declaration(profiles=(), note=f"the compiled option set: {NOT_COMPILED[component]}")
        sampled = SAMPLED_CHECKS if component in SAMPLED else ()
        if no_cpu_compiler():  # on CUDA inductor writes Triton and its wrapper in Python
            return Declaration(profiles=("thorough",), checks=sampled, devices=("cuda",),
                               note=f"the compiled option set: inductor's CPU code needs a C++ compiler, and none was "
                                    f"found ({no_cpu_compiler()}; apt-get install g++)")
        return Declaration(profiles=("thorough",), checks=sampled,
                           note="the compiled option set (torch.compile, inductor, dynamic=True) costs seconds of "
                                "compiling per structure drawn: it runs in the thorough profile"
                                + (f", and its {', '.join(sampled)} check in every profile" if sampled else ""))
    return declare


def eager_only(subject):
    """The subject without its compiled option sets (a test of its eager kernels, under a dispatch
    mode dynamo does not compile in)."""
    return dataclasses.replace(subject, options={c: {name: knobs for name, knobs in sets.items() if name != "compiled"}
                                     for c, sets in subject.options.items()})


def with_compiled(options: dict, builders: dict, declarations: dict) -> tuple[dict, dict, dict]:
    """Every component of `builders` also as the named option set "compiled": the options as named
    sets (swept knobs become one set each, named as the suite shows them, "mode=batch_first", so
    their test ids stay), the builders taking `compile`, the declarations saying where it runs."""
    sets = {}
    for component in builders:
        given = options.get(component, {})
        if named_sets(given):
            named = dict(given)
        else:
            combos = [{}]
            for knob, values in given.items():
                combos = [c | {knob: v} for c in combos for v in values]
            named = {(option_label(c) or "eager"): c for c in combos}
        sets[component] = {**named, "compiled": COMPILED}
    return (sets, {name: compiled(b) for name, b in builders.items()},
            {name: declaration(name, declarations.get(name)) for name in builders})
