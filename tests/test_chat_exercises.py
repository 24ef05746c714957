"""The chat-templates exercises: reference solutions pass, wrong answers get a message naming the fix."""

from functools import partial

import pytest
from transformers import AutoTokenizer

from course_harness import fixture_data
from course_helpers import check_chatml_text, check_gsm8k_messages
from tests.paths import ROOT, load_module

SOLUTIONS = ROOT / "1_instruction_tuning" / "solutions" / "chat_templates_solutions.py"


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return AutoTokenizer.from_pretrained(tiny["instruct"])


@pytest.fixture(scope="module")
def smoltalk_rows(tmp_path_factory):
    return fixture_data.smoltalk(tmp_path_factory.mktemp("cache"))["train"].select(range(8))


@pytest.fixture(scope="module")
def gsm8k_rows(tmp_path_factory):
    return fixture_data.gsm8k(tmp_path_factory.mktemp("cache"))["train"].select(range(8))


solutions = load_module(SOLUTIONS)


def test_smoltalk_solution_passes_its_checker(tokenizer, smoltalk_rows):
    assert check_chatml_text(partial(solutions.smoltalk_row_to_chatml, tokenizer=tokenizer), smoltalk_rows, tokenizer)


def test_gsm8k_solutions_pass_their_checkers(tokenizer, gsm8k_rows):
    assert check_gsm8k_messages(solutions.gsm8k_row_to_messages, gsm8k_rows)
    assert check_chatml_text(
        partial(solutions.gsm8k_row_to_chatml, tokenizer=tokenizer),
        gsm8k_rows,
        tokenizer,
        messages_of=lambda row: solutions.gsm8k_row_to_messages(row)["messages"],
    )


def render(tokenizer, messages, **kwargs):
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


# (what the learner wrote, words the checker's message must contain)
SMOLTALK_MISTAKES = {
    "forgot return": (lambda tok: lambda row: None, "add `return"),
    "returned the string": (lambda tok: lambda row: render(tok, row["messages"]), "should return a dict"),
    "wrong key": (lambda tok: lambda row: {"chatml": render(tok, row["messages"])}, "no 'text' key"),
    "token ids": (
        lambda tok: lambda row: {"text": tok.apply_chat_template(row["messages"])["input_ids"]},
        "tokenize=False",
    ),
    "tokenized dict": (lambda tok: lambda row: {"text": tok.apply_chat_template(row["messages"])}, "tokenize=False"),
    "template not applied": (lambda tok: lambda row: {"text": str(row["messages"])}, "chat template was not applied"),
    "generation prompt": (
        lambda tok: lambda row: {"text": render(tok, row["messages"], add_generation_prompt=True)},
        "leave add_generation_prompt at False",
    ),
    "last turn dropped": (lambda tok: lambda row: {"text": render(tok, row["messages"][:-1])}, "render every message"),
    "crashes": (lambda tok: lambda row: {"text": render(tok, row["conversation"])}, "raised KeyError"),
    "content changed": (
        lambda tok: lambda row: {"text": render(tok, [m | {"content": m["content"].lower()} for m in row["messages"]])},
        "differs from the template's rendering at character",
    ),
}


@pytest.mark.parametrize("mistake", SMOLTALK_MISTAKES)
def test_smoltalk_checker_names_the_fix(mistake, tokenizer, smoltalk_rows):
    make_answer, hint = SMOLTALK_MISTAKES[mistake]
    verdict = check_chatml_text(make_answer(tokenizer), smoltalk_rows, tokenizer)
    assert not verdict.ok
    assert hint in verdict.message
    assert repr(verdict).startswith("❌ "), "a notebook shows the verdict as the cell's output"


def question_answer(row, **changes):
    messages = [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row["answer"]}]
    for index, message in changes.items():
        messages[int(index[1:])] = message
    return {"messages": messages}


GSM8K_MISTAKES = {
    "unknown role": (
        lambda row: question_answer(row, m0={"role": "human", "content": row["question"]}),
        "unknown role 'human' (use 'user')",
    ),
    "missing assistant": (
        lambda row: {"messages": [{"role": "user", "content": row["question"]}]},
        "no assistant turn",
    ),
    "content not a string": (
        lambda row: question_answer(row, m1={"role": "assistant", "content": ["x"]}),
        "not a string",
    ),
    "no content key": (
        lambda row: question_answer(row, m1={"role": "assistant", "text": row["answer"]}),
        "needs a 'role' and a 'content'",
    ),
    "final answer cut": (
        lambda row: question_answer(row, m1={"role": "assistant", "content": row["answer"].split("####")[0]}),
        "lacks the final answer",
    ),
    "empty turn": (lambda row: question_answer(row, m0={"role": "user", "content": " "}), "is empty"),
    "messages is a string": (lambda row: {"messages": row["question"]}, "non-empty list"),
    "question missing": (
        lambda row: question_answer(row, m0={"role": "user", "content": "Solve it."}),
        "should hold the question",
    ),
    "answer first": (lambda row: {"messages": question_answer(row)["messages"][::-1]}, "should end with the assistant"),
}


@pytest.mark.parametrize("mistake", GSM8K_MISTAKES)
def test_gsm8k_checker_names_the_fix(mistake, gsm8k_rows):
    convert, hint = GSM8K_MISTAKES[mistake]
    verdict = check_gsm8k_messages(convert, gsm8k_rows)
    assert not verdict.ok
    assert hint in verdict.message


def test_gsm8k_text_checker_asks_for_step_one_first(tokenizer, gsm8k_rows):
    verdict = check_chatml_text(
        partial(solutions.gsm8k_row_to_chatml, tokenizer=tokenizer),
        gsm8k_rows,
        tokenizer,
        messages_of=lambda row: row["no such column"],
    )
    assert not verdict.ok and "make the previous step's checker pass first" in verdict.message
