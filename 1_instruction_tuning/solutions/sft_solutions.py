"""Reference solutions for the SFT exercises in `notebooks/sft_finetuning_example.ipynb`.

Try the exercises first. The test suite runs these through the notebook's checkers, and
trains the 🐕 solution briefly on the tiny default model.
"""

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from course_helpers import pick_device_and_precision, sharegpt_to_messages

# 🐕 the-stack-smol is raw source code, not conversations. Train it as code completion:
# the language-modeling format, where the model learns from every token of the `content` column.
CODE_COMPLETION_CONFIG = {"dataset_text_field": "content", "max_length": 512}


def train_code_completion(model_name, code_dataset, output_dir, max_steps=200, learning_rate=5e-5):
    """Fine-tune a base model on raw code; return the trainer and the held-out loss before and after."""
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    # float32 master weights: without dtype, transformers 5 keeps the checkpoint's bfloat16, and the
    # optimizer would update 16-bit weights directly (mixed precision expects full-precision ones)
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=torch.float32)
    _, precision = pick_device_and_precision()
    split = code_dataset.train_test_split(test_size=0.2, seed=0)
    args = SFTConfig(
        output_dir=output_dir,
        max_steps=max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=4,
        eval_strategy="no",
        save_strategy="no",
        activation_checkpointing=False,
        report_to="none",
        **CODE_COMPLETION_CONFIG,
        **precision,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=split["train"], eval_dataset=split["test"], processing_class=tokenizer
    )
    eval_loss_before = trainer.evaluate()["eval_loss"]
    trainer.train()
    return trainer, eval_loss_before, trainer.evaluate()["eval_loss"]


@torch.no_grad()
def complete_code(model, tokenizer, prompt, max_new_tokens=32):
    """Evaluate a code model with a code prompt (no chat template): it continues the text."""
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    output = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


# 🦁 your own data: most public chat datasets come in one of these shapes. Bring them to
# `messages` (conversational) so that SFTTrainer applies the chat template for you.
def instruction_response_to_messages(row):
    """Alpaca-style rows: an instruction (and optional input) and the expected output."""
    prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]}


def own_dataset_example():
    """A tiny use-case dataset (replying to customer e-mails), converted from ShareGPT rows."""
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "My order 1042 arrived damaged. What can I do?"},
                {
                    "from": "gpt",
                    "value": "I am sorry about that! Reply with a photo of the damage and we will send a replacement.",
                },
            ]
        },
        {
            "conversations": [
                {"from": "human", "value": "Can I change the delivery address of order 2210?"},
                {
                    "from": "gpt",
                    "value": "Yes, as long as it has not shipped. Send the new address and we will update it.",
                },
            ]
        },
    ]
    return Dataset.from_list(rows).map(sharegpt_to_messages, remove_columns=["conversations"])
