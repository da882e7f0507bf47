"""What the site says of each E-id beyond its equation, all found in the code, not kept by hand:
its section (the spec module that defines it), the reference functions that implement it (their
docstrings name it), the components and checks that test it, and who implements its variants
(the suite's runs of the built-in subjects, and the libraries below)."""
from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re
import sys
from dataclasses import dataclass

from nlpspec import reference
from nlpspec.properties.suite import COMPONENTS, checks_for
from nlpspec.spec import CATALOGUE
from nlpspec.spec.equation import DEFINED_IN

# (page, title, the spec modules it shows, one sentence of the article's argument)
SECTIONS = (
    ("recurrent-cells", "1. Recurrent cells", ("nlpspec.spec.recurrent",),
     "A cell reads the input and its previous state and writes a new state; the LSTM and the GRU add "
     "gates so that the state can carry information, and gradients, across many steps."),
    ("rnn-architectures", "2. RNN architectures", ("nlpspec.spec.architectures",),
     "Cells chained over a sequence: many-to-many, many-to-one, stacked, bidirectional, and the "
     "encoder-decoder (seq2seq)."),
    ("attention", "3. Attention", ("nlpspec.spec.attention", "nlpspec.spec.positional"),
     "Every position reads every other in one parallel step, weighted by a softmax of scaled dot "
     "products; masks hide what a position may not see, and sinusoids tell positions apart."),
    ("transformer", "4. Transformer", ("nlpspec.spec.transformer",),
     "Attention and a position-wise feed-forward network, each wrapped in a residual connection and "
     "a LayerNorm, stacked into an encoder and a decoder that predicts the next token."),
)

# Libraries known to implement a named variant, beyond the subjects this suite ships.
ELSEWHERE = {
    "gru.reset_after": "cuDNN; Keras GRU(reset_after=True), the TensorFlow 2 default",
    "mask.bool_true_masked": "PyTorch nn.MultiheadAttention and nn.Transformer (key_padding_mask, boolean attn_mask)",
    "mask.bool_true_attends": "PyTorch F.scaled_dot_product_attention (boolean attn_mask); Hugging Face attention_mask "
                              "(1 = attend)",
    "mask.causal_lower_right": "FlashAttention 2.1 and later (causal=True with n ≠ m); "
                               "torch.nn.attention.bias.causal_lower_right",
    "mask.sliding_window": "Mistral, Qwen2 (use_sliding_window), Gemma 2 and 3's local layers; FlashAttention's "
                           "window_size=(w - 1, 0); Hugging Face's create_sliding_window_causal_mask",
    "attn.unscaled": "T5, which folds 1/√d_k into its initialisation",
    "pe.concat": "Marian (tensor2tensor and fairseq use the same layout with another frequency spacing)",
    "pe.scaled_input": "the original Transformer paper (embeddings times √d_model); fairseq's embed_scale",
    "ffn.gelu": "BERT (the exact erf form); nn.Transformer(activation='gelu')",
    "enc.attn.pre_ln": "GPT-2; nn.Transformer(norm_first=True)",
    "enc.ffn.pre_ln": "GPT-2; nn.Transformer(norm_first=True)",
    "dec.self.pre_ln": "GPT-2; nn.Transformer(norm_first=True)",
    "dec.cross.pre_ln": "nn.Transformer(norm_first=True)",
    "dec.ffn.pre_ln": "GPT-2; nn.Transformer(norm_first=True)",
    "stack.final_norm": "nn.Transformer (its encoder and decoder norms); nn.TransformerEncoder/Decoder(norm=...); "
                        "GPT-2's ln_f",
    "classifier.tied": "the original Transformer paper; GPT-2 (lm_head tied to the token embedding)",
}


@dataclass(frozen=True)
class Code:
    """A function, and where its source is: path relative to the repository, first line."""

    name: str
    path: str
    line: int


def section_of(eid: str) -> str:
    module = DEFINED_IN[eid]
    return next(page for page, _, modules, _ in SECTIONS if module in modules)


def entries(page: str) -> list[str]:
    modules = next(m for p, _, m, _ in SECTIONS if p == page)
    return [eid for eid in CATALOGUE if DEFINED_IN[eid] in modules]


def code(fn) -> Code:
    """Where fn is, relative to the folder that holds nlpspec's parts (the checkout, or the installed
    package): "reference/cells.py", as docs/source.py reads it."""
    path = pathlib.Path(inspect.getsourcefile(fn)).resolve()
    package = sys.modules[".".join(fn.__module__.split(".")[:2])]  # nlpspec.reference
    root = pathlib.Path(package.__file__).resolve().parent.parent
    return Code(fn.__qualname__, path.relative_to(root).as_posix(), inspect.getsourcelines(fn)[1])


def _names(eid: str, text: str) -> bool:
    return re.search(r"(?<![\w.])" + re.escape(eid) + r"(?![\w])", text) is not None


def reference_code() -> dict[str, list[Code]]:
    """E-id -> the reference functions whose docstrings name it."""
    found: dict[str, list[Code]] = {}
    for info in pkgutil.iter_modules(reference.__path__):
        module = importlib.import_module(f"nlpspec.reference.{info.name}")
        for _, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__:
                for eid in CATALOGUE:
                    if _names(eid, inspect.getdoc(fn) or ""):
                        found.setdefault(eid, []).append(code(fn))
    return found


def components_of(eid: str) -> list[str]:
    """The components whose checks bear on the E-id, as the article's equation or a named variant."""
    from nlpspec.spec.recurrent import CELLS

    def bears(c) -> bool:
        cells = [eq.eid for kind, eqs in CELLS.items() if kind.startswith(c.family + ".") for eq in eqs] \
            if c.recurrent else []  # a recurrent component's variants are other cells of its family
        return eid in c.eids or eid in c.variants or eid in cells
    return [c.name for c in COMPONENTS.values() if bears(c)]


def selection(eid: str) -> str:
    """The command that runs every check bearing on the E-id: its components, each by name."""
    names = components_of(eid)
    return "pytest --pyargs nlpspec -k " + (names[0] if len(names) == 1 else '"' + " or ".join(names) + '"')


def checks_of(component: str) -> list:
    return list(checks_for(COMPONENTS[component]))


def variants_of(eid: str) -> list[str]:
    return [v for v, entry in CATALOGUE.items() if getattr(entry, "variant_of", None) == eid]


def found_in(eid: str, runs: list[dict]) -> list[str]:
    """Where the suite's runs (their reports) found the E-id implemented: each subject, and the components
    (with their option sets) whose checks that exercise it all passed: 'torch 2.13.0: encoder (pre_ln)'."""
    found = []
    for run in runs:
        by_component: dict[str, set] = {}
        failed = set()
        for r in run.get("records", []):
            if eid in r.get("eids", ()):
                key = (r["component"], r.get("option_set", ""))
                if r["status"] == "pass":
                    by_component.setdefault(r["component"], set()).add(r.get("option_set", ""))
                elif r["status"] in ("fail", "error"):
                    failed.add(key)
        parts = []
        for component, sets in by_component.items():
            sets = sorted(s for s in sets if (component, s) not in failed)
            if sets:
                named = [s for s in sets if s]
                parts.append(component + (f" ({', '.join(named)})" if named else ""))
        if parts:
            found.append(f"{run['subject']} {run.get('version', '')}".strip() + ": " + ", ".join(parts))
    return found
