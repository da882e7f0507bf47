"""Bug-finding power: every mutant of the zoo is caught by the ci profile (the default in CI)."""
import pytest
from hypothesis import settings

from nlpspec.properties.suite import all_checks
from nlpspec.properties.runner import first_failure
from nlpspec.subjects.zoo import BACKWARD, MUTANTS
from nlpspec.subjects.zoo.compiled import MUTANTS as COMPILED

from optional import require

pytestmark = pytest.mark.selftest


# For each check, a mutant it catches on its own: no check of the suite is vacuous.
WITNESS = {
    "oracle": "rnn_bias_dropped",
    "determinism": "rnn_dropout_left_on",
    "batch_independence": "rnn_batch_rows_mixed",
    "bounds": "lstm_output_on_C",
    "gradient": "lstm_backward_forget_skipped",
    "parameters_read": "mha_value_bias_ignored",
    "highway": "lstm_gates_swapped",
    "closed_update": "gru_update_flipped",
    "unroll_equals_steps": "layers_cold_start",
    "bidirectional_reversal": "bidirectional_not_reversed_back",
    "stacked_composition": "stacked_fed_x",
    "padded_steps_ignored": "padded_backward_from_padded_end",
    "final_is_last_real_step": "padded_final_at_padded_end",
    "backward_starts_at_own_end": "padded_backward_from_padded_end",
    "permutation": "mha_split_without_transpose",
    "hidden_keys_ignored": "causal_one_ahead",
    "padding_appended": "mha_key_padding_ignored",
    "equal_keys": "attn_softmax_over_queries",
    "one_head": "mha_without_output_projection",
    "head_locality": "mha_heads_reversed",
    "fully_masked_row": "attn_raises_on_fully_masked_rows",
    "full_size": "pe_table_wraps_at_1024",
    "residual": "enc_ffn_residual_dropped",
    "residual_sum": "enc_ffn_residual_twice",
    "causal": "dec_self_attention_unmasked",
    "memory_permutation": "dec_cross_masked_causally",
    "padding_positions": "enc_key_padding_ignored",
    "incremental_decoding": "dec_scaled_by_length",
    "causal_model": "model_right_shift_missing",
    "stacked_layers": "enc_stack_reuses_first_layer",
}


def test_every_check_has_a_witness():
    assert set(WITNESS) == {check.name for check in all_checks()}


@pytest.mark.parametrize("check, name", sorted(WITNESS.items()))
def test_check_alone_catches_its_witness(check, name):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=[check])
    assert record is not None and record.check == check, f"{check} alone does not catch {name} ({mutant.bug})"


@pytest.mark.parametrize("name", ["dec_dropout_left_on", "rnn_dropout_left_on"])
def test_dropout_left_on_is_reported_as_non_determinism_not_as_a_wrong_equation(name):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=["oracle"])
    assert record is not None and "the subject is not deterministic" in record.message, record and record.message


# The autograd half of a check: a forward that is right and a backward that leaks (a fused kernel
# whose hand-written backward ignores the mask). Its values are the reference's, so only a Jacobian
# can see it; the check must name it as a non-zero gradient.
JACOBIAN_WITNESS = {"hidden_keys_ignored": "attn_backward_unmasked", "causal": "dec_backward_unmasked",
                    "causal_model": "model_backward_unshifted"}


@pytest.mark.parametrize("check, name", sorted(JACOBIAN_WITNESS.items()))
def test_jacobian_part_catches_a_backward_leak(check, name):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=[check])
    assert record is not None and "not exactly 0 (a random cotangent, autograd)" in record.message, \
        record and record.message


# Right forward, wrong backward (subjects/zoo/backward.py: a torch.autograd.Function each): the gradient
# check alone catches each, as a gradient disagreeing with the spec's; no forward check can.
BACKWARD_MUTANTS = sorted(name for name in MUTANTS if name in BACKWARD)


def test_the_zoo_has_eight_backward_mutants_across_the_families():
    assert len(BACKWARD_MUTANTS) >= 8
    assert {c.split(".")[0] for name in BACKWARD_MUTANTS for c in MUTANTS[name].components} >= \
        {"attention", "layernorm", "ffn", "rnn", "lstm", "gru"}


@pytest.mark.parametrize("name", BACKWARD_MUTANTS)
def test_gradient_check_catches_a_wrong_backward(name):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=["gradient"])
    assert record is not None and "disagrees with the spec's (the vector-Jacobian product" in record.message, \
        record and record.message
    assert record.failures[0]["kind"] == "gradient", record.message


@pytest.mark.parametrize("name", BACKWARD_MUTANTS)
def test_a_wrong_backward_has_the_right_forward(name):
    mutant = MUTANTS[name]
    assert first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=["oracle"]) is None


# A witness is caught by its check alone (the tests above), and so by the suite, which runs that check:
# only the other mutants are hunted through every check here (a witness's hunt is the slowest: a
# backward leak passes every forward check before the one that sees it).
WITNESSES = set(WITNESS.values()) | set(JACOBIAN_WITNESS.values()) | set(BACKWARD_MUTANTS)


# Bugs at a tile boundary (subjects/zoo/tiled.py): exact below 65 positions, so the ci profile's sizes
# cannot reach them, and the scale profile's must.
AT_SCALE = sorted(name for name, mutant in MUTANTS.items() if mutant.scale)


@pytest.mark.parametrize("name", AT_SCALE)
def test_a_tile_boundary_bug_is_out_of_reach_of_small_sizes_and_caught_at_scale(name):
    mutant = MUTANTS[name]
    assert first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=["oracle"]) is None
    at_scale = settings(settings.get_profile("scale"), derandomize=True, database=None)
    record = first_failure(mutant.subject, mutant.components, at_scale, checks=["oracle"], scale=True)
    assert record is not None and record.failures[0]["kind"] == "value", record and record.message


@pytest.mark.parametrize("name", sorted(set(MUTANTS) - WITNESSES - set(AT_SCALE)))
def test_mutant_is_caught(name):
    mutant = MUTANTS[name]
    if name in COMPILED:
        require("g++")  # torch.compile's CPU code is C++: without a compiler the compiled set runs on CUDA alone
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), dtype=mutant.dtype)
    assert record is not None, f"mutant {name} ({mutant.bug}) passed every check of {mutant.components}"
