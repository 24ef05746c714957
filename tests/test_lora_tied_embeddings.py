"""The LoRA trap the SFT lesson describes, measured on the tiny default (tied embeddings, random init).

Plain LoRA freezes the embeddings and the tied output layer; on the tiny model, whose random
embeddings are small, that caps how confident any prediction can be, so the loss stalls high
even though most next tokens are right. Training the embeddings (kept tied) removes the cap.
Run with -s to see the figures the lesson quotes.
"""

import pytest
import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

from course_harness import fixture_data
from course_helpers import CHATML_TEMPLATE

STEPS, LEARNING_RATE, RANK, SEED = 300, 5e-3, 16, 42


def final_train_loss(tiny, tmp_path, dataset, **lora_extra):
    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.eos_token = "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(tiny["base"], dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        learning_rate=LEARNING_RATE,
        per_device_train_batch_size=16,
        max_length=64,
        assistant_only_loss=True,
        logging_steps=STEPS // 6,
        save_strategy="no",
        activation_checkpointing=False,
        report_to="none",
        bf16=False,
        seed=SEED,
        disable_tqdm=True,
    )
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules="all-linear", task_type="CAUSAL_LM", **lora_extra)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    last = [entry for entry in trainer.state.log_history if "loss" in entry][-1]
    return last["loss"], last["mean_token_accuracy"]


@pytest.mark.parametrize("case", ["plain LoRA", "LoRA + tied embeddings"])
def test_training_the_tied_embeddings_removes_the_loss_floor(case, tiny, tmp_path):
    dataset = fixture_data.smoltalk(tmp_path / "cache")["train"]
    extra = {} if case == "plain LoRA" else {"modules_to_save": ["embed_tokens"], "ensure_weight_tying": True}
    loss, accuracy = final_train_loss(tiny, tmp_path, dataset, **extra)
    print(f"\n{case}: final train loss {loss:.3f}, token accuracy {accuracy:.2f} ({STEPS} steps, lr {LEARNING_RATE})")
    if case == "plain LoRA":
        assert loss > 3.0 and accuracy > 0.8, "plain LoRA should get tokens right yet stall at a high loss"
    else:
        assert loss < 0.5
