"""The tiny default stored the way the real SmolLM2-135M checkpoint is: bf16 weights, no pad token.

Recipe tests start from this copy, so that neither an fp32 checkpoint nor a ready-made pad token can
hide what `trl sft` does with the real one.
"""

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from course_harness.paths import NOTEBOOK_RUNS
from tests.once import once_per_test_run


def like_the_real_checkpoint(tiny_base, out):
    """Save ``tiny_base`` into ``out`` with bf16 weights and without a pad token; return ``out``."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.pad_token = None
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16)
    model.config.pad_token_id = model.generation_config.pad_token_id = None
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session", name="real_layout")
def real_layout_fixture(tiny, run_uid):
    """The tiny base model laid out like SmolLM2-135M's checkpoint (see ``like_the_real_checkpoint``)."""
    out = NOTEBOOK_RUNS / "tiny-real-layout"
    return Path(once_per_test_run("real-layout", run_uid, lambda: str(like_the_real_checkpoint(tiny["base"], out))))
