"""SFT exercises: the dataset checker names formats and problems, and the reference solutions work."""

import re

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from course_harness import fixture_data
from course_helpers import check_code_completion_config, check_sft_dataset, sharegpt_to_messages
from tests.paths import ROOT, load_module

SOLUTIONS = ROOT / "1_instruction_tuning" / "solutions" / "sft_solutions.py"
solutions = load_module(SOLUTIONS)
CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


@pytest.mark.parametrize(
    "rows, text_field, format_named",
    [
        ([{"messages": CHAT}], "text", "conversational"),
        ([{"prompt": "2 + 2 =", "completion": " 4"}], "text", "prompt-completion"),
        ([{"prompt": CHAT[:1], "completion": CHAT[1:]}], "text", "prompt-completion"),
        ([{"text": "Once upon a time"}], "text", "language modeling ('text')"),
        ([{"content": "def f():\n    return 1\n"}], "content", "language modeling ('content')"),
    ],
)
def test_good_datasets_get_their_format_named(rows, text_field, format_named):
    verdict = check_sft_dataset(Dataset.from_list(rows), text_field=text_field)
    assert verdict.ok and format_named in verdict.message


BAD_DATASETS = {
    "not a dataset": (None, "expected a datasets.Dataset"),
    "empty": (Dataset.from_list([]), "empty"),
    "no known column": (Dataset.from_list([{"question": "q", "answer": "a"}]), "no column that SFTTrainer understands"),
    "unknown role": (
        Dataset.from_list([{"messages": [{"role": "human", "content": "Hi"}, CHAT[1]]}]),
        "unknown role 'human' (use 'user')",
    ),
    "empty turn": (Dataset.from_list([{"messages": [CHAT[0], {"role": "assistant", "content": ""}]}]), "is empty"),
    "no assistant": (Dataset.from_list([{"messages": CHAT[:1]}]), "no assistant turn"),
    "content not text": ([{"messages": [CHAT[0], {"role": "assistant", "content": 42}]}], "not a string"),
    "sharegpt": (Dataset.from_list([{"conversations": [{"from": "human", "value": "Hi"}]}]), "sharegpt_to_messages"),
    "prompt without completion": (Dataset.from_list([{"prompt": "Hi"}]), "no 'completion' column"),
    "empty text": (Dataset.from_list([{"text": " "}]), "non-empty text"),
    "dataset dict": ({"train": Dataset.from_list([{"text": "x"}])}, "pass one split"),
}


@pytest.mark.parametrize("case", BAD_DATASETS)
def test_bad_datasets_are_told_what_to_fix(case):
    dataset, hint = BAD_DATASETS[case]
    verdict = check_sft_dataset(dataset)
    assert not verdict.ok
    assert hint in verdict.message


def test_sharegpt_rows_convert_to_messages():
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}
    assert sharegpt_to_messages(row) == {"messages": CHAT}


@pytest.fixture(scope="module")
def code_dataset(tmp_path_factory):
    return fixture_data.the_stack_python(tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize(
    "config, hint",
    [
        ({"dataset_text_field": None}, "set 'dataset_text_field' to the column that holds the code"),
        ({"dataset_text_field": "code"}, "but the dataset's columns are"),
        ({"dataset_text_field": "content", "assistant_only_loss": True}, "remove assistant_only_loss"),
        ("dataset_text_field=content", "expected a dict"),
        ({"dataset_text_field": "content", "packing": True, "max_length": None}, "TRL refuses max_length=None"),
        ({"dataset_text_field": "content", "max_length": None}, "turns truncation off"),
        ({"dataset_text_field": "content", "padding_free": True}, "padding-free cannot cut"),
    ],
)
def test_code_completion_checker_names_the_fix(config, hint, code_dataset):
    verdict = check_code_completion_config(config, code_dataset)
    assert not verdict.ok and hint in verdict.message


@pytest.mark.parametrize(
    "config, trl_says",
    [
        ({"packing": True, "max_length": None}, "When packing is enabled, `max_length` can't be `None`"),
        ({"padding_free": True}, "When `padding_free=True` without packing, `max_length` is not enforced"),
    ],
)
def test_trl_refuses_what_the_checker_says_it_refuses(config, trl_says, tiny, code_dataset, tmp_path):
    """The checker's claims about TRL hold for the pinned version: these configs fail in SFTTrainer itself."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(str(tmp_path), dataset_text_field="content", report_to="none", use_cpu=True, bf16=False, **config)
    with pytest.raises(ValueError, match=re.escape(trl_says)):
        SFTTrainer(model=str(tiny["base"]), args=args, train_dataset=code_dataset.select(range(4)))


def test_code_completion_checker_accepts_a_bounded_length(code_dataset):
    for config in ({"dataset_text_field": "content"}, {"dataset_text_field": "content", "packing": True}):
        assert check_code_completion_config(config, code_dataset), config


def test_code_completion_solution_passes_and_learns_code(tiny, code_dataset, tmp_path):
    assert check_code_completion_config(solutions.CODE_COMPLETION_CONFIG, code_dataset)
    trainer, loss_before, loss_after = solutions.train_code_completion(
        str(tiny["base"]), code_dataset, str(tmp_path), max_steps=40, learning_rate=3e-3
    )
    assert loss_after < loss_before - 1.0, (loss_before, loss_after)
    completion = solutions.complete_code(trainer.model, AutoTokenizer.from_pretrained(tiny["base"]), "def ")
    assert isinstance(completion, str) and completion


def test_own_dataset_example_is_conversational():
    verdict = check_sft_dataset(solutions.own_dataset_example())
    assert verdict.ok and "conversational" in verdict.message
