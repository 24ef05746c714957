"""SFT exercises: the dataset checker names formats and problems, and the reference solutions work."""

import re

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from course_harness import fixture_data
from course_helpers import check_code_completion_config, check_sft_dataset, sharegpt_to_messages
from course_helpers.sft_exercises import FORMATS
from tests.paths import ROOT, load_module

SOLUTIONS = ROOT / "1_instruction_tuning" / "solutions" / "sft_solutions.py"
solutions = load_module(SOLUTIONS)
CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]


SYSTEM = {"role": "system", "content": "Be brief."}
PLAIN = {"prompt": "2 + 2 =", "completion": " 4"}


def split(*rows):
    return Dataset.from_list(list(rows))


@pytest.mark.parametrize(
    "rows, text_field, format_named",
    [
        ([{"messages": CHAT}], "text", "conversational"),
        ([{"messages": [SYSTEM, *CHAT, *CHAT]}], "text", "conversational"),
        ([PLAIN], "text", "prompt-completion ('prompt' + 'completion' text)"),
        ([{"prompt": CHAT[:1], "completion": CHAT[1:]}], "text", "conversational prompt-completion"),
        ([{"prompt": [SYSTEM, *CHAT, CHAT[0]], "completion": CHAT[1:]}], "text", "conversational prompt-completion"),
        ([{"text": "Once upon a time"}], "text", "language modeling ('text')"),
        ([{"content": "def f():\n    return 1\n"}], "content", "language modeling ('content')"),
    ],
)
def test_good_datasets_get_their_format_named(rows, text_field, format_named):
    verdict = check_sft_dataset(Dataset.from_list(rows), text_field=text_field)
    assert verdict.ok and format_named in verdict.message
    assert verdict.format in FORMATS and format_named.startswith(verdict.format)


@pytest.mark.parametrize(
    "splits, options, held_out, rows, said",
    [
        ({"train": 30, "test": 6, "validation": 7}, {}, "test", 6, "measure on 'test'"),
        ({"train": 30, "validation": 7}, {}, "validation", 7, "measure on 'validation'"),
        ({"train": 30, "test": 6, "validation": 7}, {"eval_split": "validation"}, "validation", 7, "'validation'"),
        ({"train": 60}, {}, None, 6, "less 10% of it held out"),
        ({"train": 60}, {"held_out_size": 12}, None, 12, "less 12 rows of it held out"),
        ({"train_sft": 30, "test_sft": 6}, {"train_split": "train_sft", "eval_split": "test_sft"}, "test_sft", 6, ""),
    ],
)
def test_split_layouts_are_planned(splits, options, held_out, rows, said):
    dataset = {name: split(*[{"messages": CHAT}] * n) for name, n in splits.items()}
    verdict = check_sft_dataset(dataset, **options)
    assert verdict.ok, verdict.message
    assert (verdict.eval_split, verdict.held_out_rows) == (held_out, rows)
    assert said in verdict.message


MESSAGES_AND_PROMPT = split({"prompt": "Hi", "prompt_id": "a1", "messages": CHAT})
BAD_DATASETS = {
    "not a dataset": (None, {}, "expected a datasets.Dataset"),
    "rows that are not dicts": (["Hi", "Hello"], {}, "rows that are dicts of columns"),
    "empty": (Dataset.from_list([]), {}, "empty"),
    "no known column": (split({"question": "q", "answer": "a"}), {}, "no column that SFTTrainer understands"),
    "text column that does not exist": (split({"story": "x"}), {"text_field": "body"}, "no text column 'body'"),
    "unknown role": (split({"messages": [{"role": "human", "content": "Hi"}, CHAT[1]]}), {}, "use 'user'"),
    "empty turn": (split({"messages": [CHAT[0], {"role": "assistant", "content": ""}]}), {}, "is empty"),
    "no assistant": (split({"messages": CHAT[:1]}), {}, "no assistant turn"),
    "content not text": ([{"messages": [CHAT[0], {"role": "assistant", "content": 42}]}], {}, "not a string"),
    "sharegpt": (
        split({"conversations": [{"from": "human", "value": "Hi"}]}),
        {},
        "refuses them with assistant_only_loss=True ('the dataset is not conversational'",
    ),
    "conversations column": (split({"conversations": CHAT}), {}, "rename_column('conversations', 'messages')"),
    "messages and a prompt column": (MESSAGES_AND_PROMPT, {}, "remove_columns('prompt')"),
    "prompt without completion": (split({"prompt": "Hi"}), {}, "no 'completion' column"),
    "empty text": (split({"text": " "}), {}, "non-empty text"),
    "prompt messages, completion text": (split({"prompt": CHAT[:1], "completion": "Hello!"}), {}, "cannot join"),
    "prompt text, completion messages": ([{"prompt": "Hi", "completion": CHAT[1:]}], {}, "cannot join"),
    "bad role in a conversational prompt": (
        split({"prompt": [{"role": "bot", "content": "Hi"}], "completion": CHAT[1:]}),
        {},
        "row 0's prompt has the unknown role 'bot'",
    ),
    "completion that is not a reply": (split({"prompt": CHAT[:1], "completion": [CHAT[0], CHAT[1]]}), {}, "['user']"),
    "mixed formats across rows": ([{"messages": CHAT}, PLAIN], {}, "rows mix formats: row 0 is conversational"),
    "row with nothing to train on": (
        [{"messages": CHAT, "text": None}, {"messages": None, "text": None}],
        {},
        "row 1 has nothing to train on",
    ),
    "split that does not exist": ({"train": split({"messages": CHAT})}, {"eval_split": "dev"}, "no split 'dev'"),
    "train split that does not exist": ({"train_sft": split({"messages": CHAT})}, {}, "there is no split 'train'"),
    "held-out split too small": (
        {"train": split(*[{"messages": CHAT}] * 9), "test": split({"messages": CHAT})},
        {},
        "the held-out split 'test' has 1 rows",
    ),
    "train split too small to hold rows out": (
        {"train": split(*[{"messages": CHAT}] * 30)},
        {},
        "holds out 3 of the 30 'train' rows",
    ),
    "held-out split in another format": (
        {"train": split(*[{"messages": CHAT}] * 9), "test": split(*[PLAIN] * 5)},
        {},
        "the held-out split 'test' is prompt-completion, but 'train' is conversational",
    ),
    "bad row in the held-out split": (
        {"train": split(*[{"messages": CHAT}] * 9), "test": split(*[{"messages": CHAT}] * 4, {"messages": CHAT[:1]})},
        {},
        "in the split 'test': row 4 has no assistant turn",
    ),
    "measuring on the train split": ({"train": split({"messages": CHAT})}, {"eval_split": "train"}, "memorised"),
}


@pytest.mark.parametrize("case", BAD_DATASETS)
def test_bad_datasets_are_told_what_to_fix(case):
    dataset, options, hint = BAD_DATASETS[case]
    verdict = check_sft_dataset(dataset, **options)
    assert not verdict.ok and verdict.format is None
    assert hint in verdict.message, verdict.message


def test_the_checker_knows_at_least_15_malformed_datasets():
    assert len(BAD_DATASETS) >= 15


@pytest.mark.parametrize("held_out_size", [0, -1, 1.0, "10%", True])
def test_held_out_size_must_be_a_share_or_a_count(held_out_size):
    verdict = check_sft_dataset({"train": split(*[{"messages": CHAT}] * 60)}, held_out_size=held_out_size)
    assert not verdict.ok and "held_out_size" in verdict.message


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
