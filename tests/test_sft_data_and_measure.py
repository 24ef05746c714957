"""Own data: loading from a folder or a file, holding rows out, and measuring in each format like TRL trains."""

import math

import pytest
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from course_helpers import (
    CHATML_TEMPLATE,
    check_sft_dataset,
    held_out_split,
    load_sft_dataset,
    measure,
    pick_device_and_precision,
)
from course_helpers.measure import held_out_loss, plain_text_template
from tests.paths import FIXTURES

CHAT = [{"role": "user", "content": "Hi, I'm Sam."}, {"role": "assistant", "content": "Hello Sam!"}]
TEXTS = ["Morning report for Cape Dune: calm air, 12 degrees.", "Evening report: light rain, 9 degrees."]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny):
    """The tiny base model, set up as the notebook sets up SmolLM2-135M."""
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    return AutoModelForCausalLM.from_pretrained(tiny["base"]), tokenizer


def test_a_folder_of_split_files_loads_with_its_splits():
    dataset = load_sft_dataset(str(FIXTURES / "support-chats"))
    assert sorted(dataset) == ["train", "validation"]


def test_a_single_file_becomes_the_train_split():
    dataset = load_sft_dataset(str(FIXTURES / "unit-conversions" / "data" / "train.csv"))
    assert list(dataset) == ["train"] and dataset["train"][0]["completion"].startswith(" ")


def test_an_unreadable_file_type_is_named(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"should end in one of \['.csv', '.json', '.jsonl', '.parquet'\]"):
        load_sft_dataset(str(path))


def test_rows_held_out_of_train_are_the_same_for_the_same_seed(capsys):
    dataset = {"train": Dataset.from_list([{"messages": CHAT, "id": i} for i in range(40)])}
    data_check = check_sft_dataset(dataset, held_out_size=0.2)
    train, held_out = held_out_split(dataset, data_check, seed=7)
    assert (len(train), len(held_out)) == (32, 8)
    assert "8 of the 40 train rows are held out (seed 7)" in capsys.readouterr().out
    assert held_out["id"] == held_out_split(dataset, data_check, seed=7)[1]["id"]
    assert not set(held_out["id"]) & set(train["id"])


def test_a_rejected_dataset_is_not_split():
    dataset = {"train": Dataset.from_list([{"question": "q"}] * 60)}
    with pytest.raises(ValueError, match="cannot be used as it is: in the split 'train': no column"):
        held_out_split(dataset, check_sft_dataset(dataset), seed=0)


def test_plain_prompts_are_measured_without_a_chat_template(model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    prompt = "Convert 3 km to m:"
    with plain_text_template(tokenizer):
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    assert rendered["input_ids"] == tokenizer(prompt)["input_ids"]
    assert tokenizer.chat_template == CHATML_TEMPLATE


EXAMPLES = {
    "conversational": {"messages": [CHAT] * 3},
    "conversational prompt-completion": {"prompt": [CHAT[:1]] * 3, "completion": [CHAT[1:]] * 3},
    "prompt-completion": {"prompt": ["Convert 3 km to m:"] * 3, "completion": [" 3,000 m"] * 3},
    "language modeling": {"report": TEXTS},
}


@pytest.mark.parametrize("data_format", EXAMPLES)
def test_each_format_gets_its_own_metrics(model_and_tokenizer, data_format):
    model, tokenizer = model_and_tokenizer
    examples = Dataset.from_dict(EXAMPLES[data_format])
    metrics = measure(model, tokenizer, examples, data_format, text_field="report", max_new_tokens=4, n_samples=2)
    assert len(metrics["samples"]) == 2
    if data_format == "language modeling":
        assert set(metrics) == {"held_out_loss", "perplexity", "samples"}
        assert metrics["perplexity"] == pytest.approx(math.exp(metrics["held_out_loss"]))
    else:
        assert set(metrics) == {"format_adherence", "exact_match", "samples"}
    assert tokenizer.chat_template == CHATML_TEMPLATE


def test_held_out_loss_is_the_loss_sfttrainer_evaluates(model_and_tokenizer, tmp_path):
    """Same tokens (each text ended with EOS), same mean per predicted token, one evaluation batch."""
    model, tokenizer = model_and_tokenizer
    args = SFTConfig(
        output_dir=str(tmp_path),
        dataset_text_field="report",
        per_device_eval_batch_size=len(TEXTS),
        padding_free=True,  # the notebook's default layout
        max_length=None,
        **pick_device_and_precision()[1],  # as the notebook: fp32 on a CPU, where SFTConfig's default bf16 fails
        activation_checkpointing=False,
        report_to="none",
    )
    eval_dataset = Dataset.from_dict({"report": TEXTS})
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=eval_dataset, eval_dataset=eval_dataset, processing_class=tokenizer
    )
    assert held_out_loss(model, tokenizer, TEXTS) == pytest.approx(trainer.evaluate()["eval_loss"], rel=1e-5)
