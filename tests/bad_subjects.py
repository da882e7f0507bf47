"""Adapters that misbehave in every way but a wrong equation, for tests/test_bad_input.py."""
import os
import signal
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import assume
from hypothesis.errors import StopTest

from nlpspec.subjects import Subject
from nlpspec.subjects.reference import SUBJECT as REFERENCE

rnn = REFERENCE.builders["rnn.cell"]


def wrapped(name, change, component="rnn.cell", **extra):
    """The reference, with the callable of `component` passed through `change(fn) -> fn`."""
    build = REFERENCE.builders[component]
    return Subject(name=name, builders={component: lambda params, **o: change(build(params))}, **extra)


def cast(tree, dtype):
    """Every float tensor of a nested case in `dtype`."""
    if isinstance(tree, dict):
        return {k: cast(v, dtype) for k, v in tree.items()}
    if isinstance(tree, list):
        return [cast(v, dtype) for v in tree]
    return tree.to(dtype) if isinstance(tree, torch.Tensor) and tree.is_floating_point() else tree


def in_float32(builder):
    """`builder` computing in float32 and handing its outputs back in the run's dtype (as a library at
    its default float32 policy does under a float64 run)."""
    def build(params, **options):
        fn = builder(cast(params, torch.float32), **options)

        def call(**inputs):
            dtype = next(v.dtype for v in inputs.values() if v.is_floating_point())
            out = fn(**cast(inputs, torch.float32))
            return cast(out, dtype) if isinstance(out, dict) else out.to(dtype)
        return call
    return build


float32_inside = in_float32(rnn)


def raises_in_builder(params):
    raise ValueError("no weights for you")


SUBJECTS = {
    "builder_raises": Subject("builder_raises", {"rnn.cell": raises_in_builder}),
    "call_raises": wrapped("call_raises", lambda fn: lambda **i: 1 / 0),
    "wrong_shape": wrapped("wrong_shape", lambda fn: lambda **i: {"h": fn(**i)["h"][:, :1].repeat(1, 2)[:, :3].T}),
    "wrong_dtype": wrapped("wrong_dtype", lambda fn: lambda **i: {"h": fn(**i)["h"].float()}),
    "wrong_device": wrapped("wrong_device", lambda fn: lambda **i: {"h": fn(**i)["h"].to("meta")}),
    "nan": wrapped("nan", lambda fn: lambda **i: {"h": fn(**i)["h"] * float("nan")}),
    "mutates": wrapped("mutates", lambda fn: lambda **i: {"h": i["h_prev"].mul_(0.5)}),
    "mutates_params": Subject("mutates_params", {"rnn.cell": lambda params: rnn({**params, "b_h": params["b_h"].zero_()})}),
    "not_a_dict": wrapped("not_a_dict", lambda fn: lambda **i: [fn(**i)["h"]]),
    "missing_output": wrapped("missing_output", lambda fn: lambda **i: {"hidden": fn(**i)["h"]}),
    # Computes in float32 and hands back float64: a precision shortfall, not a wrong equation.
    "float32_inside": Subject("float32_inside", {"rnn.cell": lambda params: float32_inside(params)}),
    "stale": Subject("stale", {"rnn.cell": rnn}, expected_failures={"rnn.cell-oracle": "thought wrong"}),
    "off_by_one": wrapped("off_by_one", lambda fn: lambda **i: {"h": fn(**i)["h"] + 1}),
    "xfail": wrapped("xfail", lambda fn: lambda **i: {"h": fn(**i)["h"] + 1},
                     expected_failures={"rnn.cell-oracle": "known off by one"}),
    "builder_returns_none": Subject("builder_returns_none", {"rnn.cell": lambda params: None}),
    # a misspelt gate carrying a wrong value: reported, never dropped
    "unknown_output": wrapped("unknown_output", lambda fn: lambda **i: {**fn(**i), "Chat_": fn(**i)["h"] + 1},
                              component="lstm.cell"),
    # right on every call made alone, but each call moves a little: noise that only two calls show
    "noisy": wrapped("noisy", lambda fn: lambda **i: {"h": fn(**i)["h"] + 1e-3 * torch.rand(())}),
    "hangs": wrapped("hangs", lambda fn: lambda **i: time.sleep(3600)),
    # attention: an adapter that turns the caller's mask into its own convention in place
    "mask_flipped_in_place": wrapped("mask_flipped_in_place", lambda fn: lambda q, k, v, mask: fn(
        q, k, v, mask.logical_not_().logical_not_() if mask.dtype == torch.bool else mask.nan_to_num_(neginf=-1e9)),
        component="attention"),
    "weights_not_summing_to_one": wrapped("weights_not_summing_to_one", lambda fn: lambda **i: {
        **fn(**i), "weights": fn(**i)["weights"] * 0.5}, component="attention"),
}

SUBJECT = SUBJECTS["call_raises"]  # for --subject bad_subjects:SUBJECT


def wrong_at(params):
    """A LayerNorm right everywhere except at d = 3 with a batch of 2 (where it adds 1e-3)."""
    build = REFERENCE.builders["layernorm"](params)

    def fn(x):
        return build(x) + (1e-3 if x.shape[0] == 2 and x.shape[-1] == 3 else 0.0)
    return fn


def two_bugs(params):
    """An RNN cell with two distinct bugs: it writes into h_prev when the batch has 2 rows or more,
    and is off by 1e-3 when the batch has one row."""
    fn = rnn(params)

    def step(x, h_prev):
        out = fn(x=x, h_prev=h_prev)["h"]
        if x.shape[0] > 1:
            h_prev.mul_(1.0)  # same values, but the suite sees its input written: a bug still
            h_prev.add_(1e-3)
        return {"h": out + (1e-3 if x.shape[0] == 1 else 0.0)}
    return step


# Declarations the suite does not know: each is a usage error before any check runs.
DECLARATIONS = {
    "unknown component 'lstm.celll' (did you mean 'lstm.cell'?)": Subject("typo", {"lstm.celll": rnn}),
    "unknown variant 'rnn.elman_v2' for rnn.cell; known: none": Subject("v", {"rnn.cell": rnn},
                                                                        variants={"rnn.cell": "rnn.elman_v2"}),
    "unknown variant 'lstm' for rnn.cell": Subject("v", {"rnn.cell": rnn}, variants={"rnn.cell": "lstm"}),
    "attention: declare one mask form, not mask.bool_true_masked, mask.bool_true_attends": Subject(
        "two_mask_forms", {"attention": REFERENCE.builders["attention"]},
        variants={"attention": ("mask.bool_true_masked", "mask.bool_true_attends")}),
    "unknown option 'batchfirst'": Subject("o", {"rnn.layers": lambda params, batch_first=True: None},
                                           options={"rnn.layers": {"batchfirst": [True]}}),
    "declares options for gru.layers, which it does not offer": Subject(
        "o", {"rnn.cell": rnn}, options={"gru.layers": {"batch_first": [True, False]}}),
    "unknown expected-failure id 'rnn.cell-orcale' (did you mean 'rnn.cell-oracle'?)": Subject(
        "x", {"rnn.cell": rnn}, expected_failures={"rnn.cell-orcale": "why"}),
}
SUBJECT_WITH_TYPO = DECLARATIONS["unknown component 'lstm.celll' (did you mean 'lstm.cell'?)"]
LAYERNORM_WRONG_AT = Subject("wrong_at", {"layernorm": wrong_at})
TWO_BUGS = Subject("two_bugs", {"rnn.cell": two_bugs})
HANGS = Subject("hangs", {"rnn.cell": SUBJECTS["hangs"].builders["rnn.cell"], "rnn.output": REFERENCE.builders["rnn.output"]})


def wrong_once(params):
    """Off by one on the very first call of the process, right ever after: a failure that does not
    reproduce when Hypothesis replays its example."""
    fn = rnn(params)

    def step(x, h_prev):
        wrong_once.calls = getattr(wrong_once, "calls", 0) + 1
        return {"h": fn(x=x, h_prev=h_prev)["h"] + (1.0 if wrong_once.calls == 1 else 0.0)}
    return step


WRONG_ONCE = Subject("wrong_once", {"rnn.cell": wrong_once})


# --- hostile adapters: each must be contained, its failure one line (tests/test_containment.py) ------------
def unprintable():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no message")
    raise Unprintable()


def retries(fn, seconds=0.8):
    """A slow call in a retry loop whose bare except swallows anything, the suite's time limit included."""
    def call(**inputs):
        for _ in range(3):
            try:
                time.sleep(seconds)
                return fn(**inputs)
            except:  # noqa: E722 (the hostile part)
                continue
        return fn(**inputs)
    return call


def cancels_alarm(fn):
    """A slow call that first cancels any pending alarm (a library cleaning up its own signal.alarm)."""
    def call(**inputs):
        signal.alarm(0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        time.sleep(60)
        return fn(**inputs)
    return call


def then(effect):
    """The reference's rnn.cell, calling `effect()` before computing."""
    return lambda fn: lambda **inputs: (effect(), fn(**inputs))[1]


class Subclassed(torch.Tensor):
    pass


HOSTILE = {
    "skips": wrapped("skips", then(lambda: pytest.skip("not today"))),
    "fails_pytest": wrapped("fails_pytest", then(lambda: pytest.fail("from inside"))),
    "exits_pytest": wrapped("exits_pytest", then(lambda: pytest.exit("bye"))),
    "sys_exit": wrapped("sys_exit", then(lambda: sys.exit(3))),
    "os_exit": wrapped("os_exit", then(lambda: os._exit(0))),
    "stop_test": wrapped("stop_test", then(lambda: (_ for _ in ()).throw(StopTest(0)))),
    "assumes": wrapped("assumes", then(lambda: assume(False))),
    "unprintable": wrapped("unprintable", then(unprintable)),
    "exits_in_builder": Subject("exits_in_builder", {"rnn.cell": lambda params: sys.exit("no")}),
    "swallows_time_limit": wrapped("swallows_time_limit", retries),
    "cancels_alarm": wrapped("cancels_alarm", cancels_alarm),
    "grad_off": wrapped("grad_off", then(lambda: torch.set_grad_enabled(False))),
    "default_dtype": wrapped("default_dtype", then(lambda: torch.set_default_dtype(torch.float64))),
    "numpy_raises": wrapped("numpy_raises", then(lambda: np.seterr(all="raise"))),
    "timer_signal_ignored": wrapped("timer_signal_ignored",
                                    then(lambda: signal.signal(signal.SIGVTALRM, signal.SIG_IGN))),
    "nested": wrapped("nested", lambda fn: lambda **i: {"h": torch.nested.nested_tensor(list(fn(**i)["h"]))}),
    "sparse": wrapped("sparse", lambda fn: lambda **i: {"h": fn(**i)["h"].to_sparse()}),
    "subclass": wrapped("subclass", lambda fn: lambda **i: {"h": fn(**i)["h"].as_subclass(Subclassed)}),
}


class SlowBackward(torch.autograd.Function):
    """The identity, whose backward takes 60 s (a custom backward that hangs)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        time.sleep(60)
        return grad


def layer_norm(change):
    """The reference LayerNorm, its output passed through change(out, x, gamma, beta)."""
    def build(params):
        fn = REFERENCE.builders["layernorm"](params)
        return lambda x: change(fn(x), x, params["gamma"], params["beta"])
    return build


def gamma_gradient_doubled(out, x, gamma, beta):
    """The same forward; ∂/∂γ twice the spec's (γ's term added again, its value 0)."""
    normalised = REFERENCE.builders["layernorm"]({"gamma": torch.ones_like(gamma), "beta": torch.zeros_like(beta)})(x)
    return out + (gamma - gamma.detach()) * normalised.detach()


HANGING_BACKWARD = Subject("hanging_backward", {"layernorm": layer_norm(lambda out, *_: SlowBackward.apply(out))})
GAMMA_GRADIENT_DOUBLED = Subject("gamma_gradient_doubled", {"layernorm": layer_norm(gamma_gradient_doubled)})
DETACHED = Subject("detached", {"layernorm": layer_norm(lambda out, *_: out.detach())})  # no graph, as ONNX Runtime
HOSTILE_SKIPS, HOSTILE_SYS_EXIT = HOSTILE["skips"], HOSTILE["sys_exit"]  # for --subject bad_subjects:…
HOSTILE_OS_EXIT = HOSTILE["os_exit"]


def forks():
    """A child process (as multiprocessing's fork start method makes) that ends by os._exit(7)."""
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7, status


FORKS = wrapped("forks", then(forks))
