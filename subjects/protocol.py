"""The subject protocol: what a subject IS, and how any implementation plugs into nlpspec. The
engine (properties/) reads subjects through this module alone; it imports nothing else of nlpspec.

A subject offers components. For each component it offers, `builders[component]` receives the
spec-named parameters (torch tensors on the suite's device and dtype, drawn by the suite) and
returns a callable that computes the component in the spec's conventions:

    fn = subject.builders["lstm.cell"](params)      # params: {"W_f": (H, H+I), "b_f": (H,), ...}
    out = fn(x=x, h_prev=h, C_prev=C)               # -> {"h": (B, H), "C": (B, H)} (+ gates)

Conventions: batch first, one row per example; weights as the article writes them (W acts on a
column [h_{t-1}, x_t], so W_f is H×(H+I) with the h columns first); biases are vectors. The
callable returns a dict keyed by spec names (a bare tensor for a one-output component). Extra
outputs named in the spec (the gates "f", "i", "Chat", "o", "r", "z", "htilde", "n") are checked
too, which points a failure at one equation.

What each component receives and returns, with every shape, is read from the suite itself, never
kept by hand here: `nlpspec list` (all), `nlpspec contract NAME` (one, with what it may declare), and
README's table (`python -m nlpspec.properties.contract`, kept equal by tests/test_readme.py).

W_Q[h] acts on the right (X W_Q[h]), as in the original paper. A mask comes in the form the
subject declares: by default the article's additive float mask (0, or -inf where the key is
hidden); with the variant mask.bool_true_masked, booleans True where hidden (nn.MultiheadAttention);
with mask.bool_true_attends, booleans True where the query may attend (F.scaled_dot_product_attention).
A query with no key visible has no value in the spec: any value (NaN, zeros, …) is accepted there
and reported, but the call must succeed and the other rows must be right.

What a subject's component does less than, or otherwise than, the spec's is declared per component
in `declarations` ({component: Declaration(...)}, or a function of the component's options
returning one), scikit-learn-tags style:

    Declaration(lacks=("cross_attention", "key_padding"),   # what it cannot take (see below)
                constants={"layernorm.epsilon": 1e-12},     # the free constants it uses
                absent=("b_hn",),                           # parameters it structurally lacks: drawn as
                                                            # their identity (0 added, 1 a scale: γ)
                dtypes=(torch.float32,), devices=("cpu",),  # where it runs; other runs are skipped
                profiles=("thorough",), checks=("oracle",), # a costly option set: those profiles, and
                                                            # those checks in every profile
                note="why, in words the summary shows")

The suite then draws only what the subject takes, evaluates the oracle with its constants, and
the summary says what was not checked because of a declaration. The capabilities a component may
lack are its `capabilities` (properties/*/components.py), the constants it may declare those its
oracle reads (each declared by the spec: spec/constants.py); `nlpspec contract NAME` lists both.

A subject that implements a named variant of the article says so in `variants`
({component: variant E-id, or a tuple of them}); it is then checked against that variant and
reported under its name. `expected_failures` maps a check id ("lstm.cell-oracle") to the reason; one that
passes is reported as stale. `options` lists implementation knobs the suite sweeps
({component: {"batch_first": [True, False]}}); each value reaches the builder as a keyword.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Builder = Callable[..., Callable[..., Any]]


@dataclass(frozen=True)
class Declaration:
    """What one component of a subject takes and uses, where it differs from the spec's full contract."""

    lacks: tuple[str, ...] = ()          # capabilities it does not have: those cases are not drawn
    constants: dict[str, float] = field(default_factory=dict)  # free constants (spec/constants.py)
    absent: tuple[str, ...] = ()         # parameter names it has no such parameter for: drawn as their
                                         # identity (0 if the spec adds it, 1 if it scales by it), not judged
    dtypes: tuple | None = None          # torch dtypes it runs in (None: any)
    devices: tuple[str, ...] | None = None  # device types it runs on ("cpu", "cuda"; None: any)
    profiles: tuple[str, ...] | None = None  # Hypothesis profiles it runs in (None: any; (): none, say why)
    checks: tuple[str, ...] = ()         # checks it runs in every profile all the same (a costly set's sample)
    note: str = ""                       # why, in the subject's words (shown with the declaration)

    def not_run(self, dtype, device, profile: str = "", check: str = "") -> str:
        """Why a run in this dtype on this device, profile and check is not for it ("" if it is; a
        run outside a profile, profile "", runs what is declared for some profile)."""
        if self.profiles is not None and (profile or not self.profiles) and profile not in self.profiles \
                and check not in self.checks:
            return (f"declared to run in the {', '.join(self.profiles)} profile only" if self.profiles else
                    "declared to run in no profile")
        if self.dtypes is not None and dtype not in self.dtypes:
            return f"declared to run in {', '.join(str(d).replace('torch.', '') for d in self.dtypes)} only"
        if self.devices is not None and device.type not in self.devices:
            return f"declared to run on {', '.join(self.devices)} only"
        return ""


@dataclass
class Subject:
    """An implementation under test: a name and a builder per component it offers."""

    name: str
    builders: dict[str, Builder]
    version: str = ""
    variants: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, list]] = field(default_factory=dict)
    declarations: dict[str, Declaration | Callable[[dict], Declaration]] = field(default_factory=dict)

    def offers(self, component: str) -> bool:
        return component in self.builders

    def declaration(self, component: str, options: dict | None = None) -> Declaration:
        """What the subject declares of `component` under these options (Declaration() if nothing)."""
        found = self.declarations.get(component, Declaration())
        return found(options or {}) if callable(found) else found


class SubjectLoadError(Exception):
    """A subject that cannot be used as given (a name that names nothing usable, a declaration the
    suite does not know); the message is one line for the user."""


class OptionSet(dict):
    """One run's knobs (each reaches the builder as a keyword), with the name the subject gave them
    where they go together (`Subject.options`: {"sdpa_own_mask": {"attn": "sdpa", "masks": "none"}});
    "" where they are one combination of swept knobs."""

    def __init__(self, knobs=(), name: str = ""):
        super().__init__(knobs)
        self.name = name


def option_label(options: dict, sep: str = ",") -> str:
    """How a run's options are shown: the set's name, else its knobs ("attn=sdpa,masks=none")."""
    return getattr(options, "name", "") or sep.join(f"{k}={v}" for k, v in options.items())


def named_sets(knobs: dict) -> bool:
    """Whether a component's options are named option sets ({name: {knob: value}}) rather than knobs
    to sweep ({knob: [values]})."""
    return bool(knobs) and all(isinstance(v, dict) for v in knobs.values())


def option_sets(subject: Subject, component) -> list[dict]:
    """Each named option set, or every combination of the subject's knobs, for this component (one
    with a `name`: properties' Component) ([{}] when it has none)."""
    given = subject.options.get(component.name, {})
    if named_sets(given):
        return [OptionSet(knobs, name) for name, knobs in given.items()]
    combos = [{}]
    for name, values in given.items():
        combos = [c | {name: v} for c in combos for v in values]
    return [OptionSet(c) for c in combos]
