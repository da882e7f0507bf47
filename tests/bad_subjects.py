"""Adapters that misbehave in every way but a wrong equation, for tests/test_bad_input.py."""
import torch

from subjects import Subject
from subjects.reference import SUBJECT as REFERENCE

rnn = REFERENCE.builders["rnn.cell"]


def wrapped(name, change, component="rnn.cell", **extra):
    """The reference, with the callable of `component` passed through `change(fn) -> fn`."""
    build = REFERENCE.builders[component]
    return Subject(name=name, builders={component: lambda params, **o: change(build(params))}, **extra)


def float32_inside(params):
    fn = rnn({k: v.float() for k, v in params.items()})
    return lambda **i: {"h": fn(**{k: v.float() for k, v in i.items()})["h"].double()}


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
    "unknown_variant": Subject("unknown_variant", {"rnn.cell": rnn}, variants={"rnn.cell": "rnn.elman_v2"}),
    # attention: an adapter that turns the caller's mask into its own convention in place
    "mask_flipped_in_place": wrapped("mask_flipped_in_place", lambda fn: lambda q, k, v, mask: fn(
        q, k, v, mask.logical_not_().logical_not_() if mask.dtype == torch.bool else mask.nan_to_num_(neginf=-1e9)),
        component="attention"),
    "two_mask_forms": Subject("two_mask_forms", {"attention": REFERENCE.builders["attention"]},
                              variants={"attention": ("mask.bool_true_masked", "mask.bool_true_attends")}),
    "weights_not_summing_to_one": wrapped("weights_not_summing_to_one", lambda fn: lambda **i: {
        **fn(**i), "weights": fn(**i)["weights"] * 0.5}, component="attention"),
}

SUBJECT = SUBJECTS["call_raises"]  # for --subject bad_subjects:SUBJECT
