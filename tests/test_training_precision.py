"""Training code never trains in the checkpoint's 16-bit dtype by accident: SmolLM2 (and its twin) is stored
in bfloat16, and transformers 5 keeps the stored dtype unless told otherwise."""

import torch

from course_harness import fixture_data
from course_harness.paths import NOTEBOOK_RUNS
from tests.paths import ROOT, load_module
from tests.test_tiny_default import stored_dtype

solutions = load_module(ROOT / "1_instruction_tuning" / "solutions" / "sft_solutions.py")


def assert_float32(model, who):
    trained = {name: p.dtype for name, p in model.named_parameters() if p.requires_grad}
    assert trained, f"{who}: no trainable parameters"
    wrong = {name: dtype for name, dtype in trained.items() if dtype != torch.float32}
    assert not wrong, f"{who} trains {len(wrong)} parameters in 16 bits, e.g. {next(iter(wrong.items()))}"


def test_the_twin_checkpoint_is_stored_in_bf16_like_smollm2(tiny):
    """The premise: without it, a missing dtype would go unnoticed (the earlier fp32 stand-in hid it)."""
    assert stored_dtype(tiny["base"]) == "bfloat16"


def test_code_completion_solution_trains_float32_weights(tiny, tmp_path):
    code = fixture_data.the_stack_python(tmp_path / "cache")
    trainer, _, _ = solutions.train_code_completion(str(tiny["base"]), code, str(tmp_path / "out"), max_steps=2)
    assert trainer.state.global_step == 2
    assert_float32(trainer.model, "sft_solutions.train_code_completion")


def test_sft_notebook_trained_float32_weights(executed_notebooks):
    """The notebook (run by `course run` on the twin) saves the weights it trained: they must be float32."""
    entry = executed_notebooks["sft_finetuning_example.ipynb"]
    assert entry["status"] == "passed", entry.get("error")
    final = NOTEBOOK_RUNS / "sft_finetuning_example" / "sft-output" / "final"
    assert stored_dtype(final) == "float32", f"the SFT notebook trained {stored_dtype(final)} weights ({final})"
