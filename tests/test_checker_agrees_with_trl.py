"""What check_sft_dataset says about a dataset TRL cannot use is what TRL 1.16 really does with it.

Each dataset goes to a real SFTTrainer on the tiny default, set up as the notebook sets up the base model.
"""

import json

import pytest
from datasets import Dataset, load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from course_helpers import CHATML_TEMPLATE, check_sft_dataset, pick_device_and_precision

CHAT = [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "It ships today."}]
SHAREGPT = [{"from": "human", "value": "Where is my parcel?"}, {"from": "gpt", "value": "It ships today."}]


def sft_trainer(tiny, tmp_path, dataset, **config):
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    model = AutoModelForCausalLM.from_pretrained(tiny["base"])
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        report_to="none",
        save_strategy="no",
        **pick_device_and_precision()[1],  # as the notebook: fp32 on a CPU, where SFTConfig's default bf16 fails
        activation_checkpointing=False,
        **config,
    )
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def rows(*rows):
    return Dataset.from_list(list(rows) * 4)


def test_sharegpt_with_assistant_only_loss_is_refused_as_not_conversational(tiny, tmp_path):
    dataset = rows({"conversations": SHAREGPT})
    with pytest.raises(ValueError, match="the dataset is not conversational"):
        sft_trainer(tiny, tmp_path, dataset, assistant_only_loss=True)
    assert "refuses them with assistant_only_loss=True ('the dataset is not conversational'" in (
        check_sft_dataset(dataset).message
    )


def test_sharegpt_without_assistant_only_loss_trains_every_token_under_sharegpt_roles(tiny, tmp_path):
    dataset = rows({"conversations": SHAREGPT})
    trainer = sft_trainer(tiny, tmp_path, dataset)
    first = trainer.train_dataset[0]
    tokenizer = trainer.processing_class
    assert tokenizer.decode(first["input_ids"]).startswith("<|im_start|>human\nWhere is my parcel?")
    assert "<|im_start|>gpt\nIt ships today." in tokenizer.decode(first["input_ids"])
    learned = tokenizer.decode([t for t, label in zip(first["input_ids"], first["labels"]) if label != -100])
    assert "Where is my parcel?" in learned, "the user's words should be in the loss"
    message = check_sft_dataset(dataset).message
    assert "keeps the roles 'human'/'gpt', so the model trains on every token" in message


@pytest.mark.parametrize(
    "row, error",
    [
        ({"prompt": CHAT[:1], "completion": "It ships today."}, TypeError),
        ({"prompt": "Where is my parcel?", "completion": CHAT[1:]}, (TypeError, AttributeError)),
    ],
    ids=["prompt messages, completion text", "prompt text, completion messages"],
)
def test_trl_cannot_join_a_conversation_and_plain_text(tiny, tmp_path, row, error):
    """Which error depends on Python's string hashing (TRL takes a key out of a set): either way, it fails."""
    with pytest.raises(error):
        sft_trainer(tiny, tmp_path, rows(row))
    assert "cannot join a conversation and plain text" in check_sft_dataset([row]).message


def test_a_prompt_column_next_to_messages_makes_trl_expect_a_completion(tiny, tmp_path):
    dataset = rows({"prompt": "Where is my parcel?", "prompt_id": "a1", "messages": CHAT})
    with pytest.raises(KeyError, match="completion"):
        sft_trainer(tiny, tmp_path, dataset)
    assert "remove_columns('prompt')" in check_sft_dataset(dataset).message


def test_rows_of_mixed_formats_break_trl(tiny, tmp_path):
    """JSON Lines mixing formats load with every column, None where a row has no value (as on the Hub).

    TRL fails on the None of the other format; where, depends on string hashing (as above)."""
    path = tmp_path / "mixed.jsonl"
    lines = [{"messages": CHAT}, {"prompt": "2 + 2 =", "completion": " 4"}] * 4
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises((AttributeError, ValueError)):
        sft_trainer(tiny, tmp_path, dataset)
    assert "rows mix formats" in check_sft_dataset(dataset).message


def test_an_unknown_role_in_a_conversational_prompt_trains_silently(tiny, tmp_path):
    """TRL renders whatever role it finds: only the checker stops a prompt the model will never see again."""
    row = {"prompt": [{"role": "human", "content": "Where is my parcel?"}], "completion": CHAT[1:]}
    trainer = sft_trainer(tiny, tmp_path, rows(row))
    assert trainer.processing_class.decode(trainer.train_dataset[0]["input_ids"]).startswith("<|im_start|>human\n")
    assert "row 0's prompt has the unknown role 'human' (use 'user')" in check_sft_dataset([row]).message
