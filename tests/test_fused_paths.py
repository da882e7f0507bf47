"""PyTorch's fused kernels, the ones a GPU swaps for cuDNN's and its own, as PyTorch offers them on the
CPU: the torch subject's runs must go through them, so that CI checks those paths without a GPU.

oneDNN's LSTM (aten.mkldnn_rnn_layer) is what nn.LSTM runs on the CPU in float32 (in bfloat16 only on
processors with bfloat16 instructions, not in float64; PyTorch has no fused CPU kernel for GRU or the
tanh RNN: cuDNN's are CUDA's only); the fused multi-head attention and Transformer encoder layer are the
eval-mode fast paths (taken where the heads are even: enough examples to draw such a case); the flash
kernel is SDPA's. Each is recorded by a TorchDispatchMode while the oracle check runs, and the check
must pass.
"""
import pytest
import torch
from hypothesis import settings
from torch.utils._python_dispatch import TorchDispatchMode

from nlpspec.properties.profiles import dtype_name
from nlpspec.properties.runner import check_subject
from nlpspec.subjects import load_subject
from nlpspec.subjects.torch_compiled import eager_only

pytestmark = pytest.mark.selftest


class Recorded(TorchDispatchMode):
    """Every aten operation run within it, by name."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


# examples: enough that one of the fast path's cases draws even heads whatever the strategies' order of
# draws (derandomised, the cases move with every change of a strategy: encoder.layer's 8 drew none once
# the overflow cases came in, and drew one by the 12th: 25 leaves a margin)
FUSED = [  # component, dtype, the fused kernel's aten operation, examples
    ("lstm.layers", torch.float32, "aten.mkldnn_rnn_layer", 3),
    ("mha", torch.float64, "aten._native_multi_head_attention", 8),
    ("encoder.layer", torch.float64, "aten._transformer_encoder_layer_fwd", 25),
    ("encoder", torch.float32, "aten._transformer_encoder_layer_fwd", 8),
    ("attention", torch.float32, "aten._scaled_dot_product_flash_attention_for_cpu", 3),
    ("attention.causal", torch.float32, "aten._scaled_dot_product_flash_attention_for_cpu", 3),
    ("mha.causal", torch.float32, "aten._scaled_dot_product_flash_attention_for_cpu", 3),
]


@pytest.mark.parametrize("component, dtype, kernel, examples", FUSED,
                         ids=[f"{c}-{dtype_name(d)}" for c, d, *_ in FUSED])
def test_the_torch_subject_runs_the_fused_kernel_and_passes(component, dtype, kernel, examples):
    quick = settings(settings.get_profile("ci"), max_examples=examples)
    with Recorded() as recorded:
        records = check_subject(eager_only(load_subject("torch")), "cpu", dtype, quick, components=[component],
                                checks=["oracle"])
    assert kernel in recorded.seen, f"{component} in {dtype} never ran {kernel}"
    failed = [r.message for r in records if r.status == "fail"]
    assert not failed, failed[0]
