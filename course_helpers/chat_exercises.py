"""Checkers for the chat-templates exercises (🐢 smoltalk → ChatML, 🐕 gsm8k → ChatML)."""

import re

from .verdict import ExerciseProblem, call_learner_function, describe, expect_dict_with, verdict_of

ROLES = ("system", "user", "assistant", "tool")
ROLE_HINTS = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}
GENERATION_PROMPT = "<|im_start|>assistant\n"


def diagnose_messages(messages, where="the conversation"):
    """Raise ExerciseProblem if ``messages`` is not a valid chat; return None if it is."""
    if not isinstance(messages, list) or not messages:
        raise ExerciseProblem(
            f"{where} should be a non-empty list of {{'role': ..., 'content': ...}} dicts, "
            f"but it is {describe(messages)}."
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not {"role", "content"} <= set(message):
            keys = sorted(message) if isinstance(message, dict) else type(message).__name__
            raise ExerciseProblem(f"message {i} of {where} is {keys}: each message needs a 'role' and a 'content' key.")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            hint = f" (use {ROLE_HINTS[role]!r})" if role in ROLE_HINTS else ""
            raise ExerciseProblem(
                f"message {i} of {where} has the unknown role {role!r}{hint}: roles are {', '.join(ROLES)}."
            )
        if not isinstance(content, str):
            raise ExerciseProblem(
                f"the content of message {i} ({role}) in {where} is a {type(content).__name__}, "
                f"not a string: {describe(content)}."
            )
        if not content.strip():
            raise ExerciseProblem(f"message {i} ({role}) in {where} is empty: every turn needs text.")
    if not any(m["role"] == "assistant" for m in messages):
        raise ExerciseProblem(
            f"{where} has no assistant turn: a training example needs the reply the model should learn."
        )
    return None


def _first_difference(expected, found):
    i = next((k for k, (a, b) in enumerate(zip(expected, found)) if a != b), min(len(expected), len(found)))
    return i, expected[i : i + 30], found[i : i + 30]


def _diagnose_chatml_text(convert, rows, tokenizer, messages_of):
    for index, row in enumerate(rows):
        text = expect_dict_with(call_learner_function(convert, row, index), "text", index)
        if isinstance(text, list) or hasattr(text, "keys"):
            raise ExerciseProblem("'text' holds token ids, not text: call apply_chat_template(..., tokenize=False).")
        if not isinstance(text, str):
            raise ExerciseProblem(f"'text' should be a string, but it is a {type(text).__name__}.")
        try:
            messages = messages_of(row)
        except Exception as error:
            raise ExerciseProblem(
                f"could not build the conversation this text should render ({type(error).__name__}: "
                f"{error}): make the previous step's checker pass first."
            ) from None
        expected = tokenizer.apply_chat_template(messages, tokenize=False)
        if not text.startswith("<|im_start|>"):
            raise ExerciseProblem(
                "the text does not start with '<|im_start|>', so the chat template was not applied: "
                f"use tokenizer.apply_chat_template(messages, tokenize=False). Found: {describe(text)}"
            )
        if text.endswith(GENERATION_PROMPT) and not expected.endswith(GENERATION_PROMPT):
            raise ExerciseProblem(
                "the text ends with a generation prompt ('<|im_start|>assistant\\n'), which belongs to "
                "inference only: for training data leave add_generation_prompt at False."
            )
        if text.count("<|im_start|>") != expected.count("<|im_start|>"):
            raise ExerciseProblem(
                f"the text has {text.count('<|im_start|>')} turns, but the conversation has "
                f"{expected.count('<|im_start|>')} (system prompt included): render every message."
            )
        if text != expected:
            at, want, got = _first_difference(expected, text)
            raise ExerciseProblem(
                f"row {index} differs from the template's rendering at character {at}: "
                f"expected {want!r}, found {got!r}."
            )
    return f"all {len(rows)} rows render exactly like the chat template."


def check_chatml_text(convert, rows, tokenizer, messages_of=lambda row: row["messages"]):
    """🐢 / 🐕: ``convert(row)`` must return ``{"text": <the ChatML rendering of the row>}``.

    ``messages_of(row)`` gives the conversation the text should render (by default the
    row's own ``messages``). Returns a :class:`Verdict`.
    """
    return verdict_of(_diagnose_chatml_text, "", convert, list(rows), tokenizer, messages_of)


FINAL_ANSWER = re.compile(r"####\s*(\S+)\s*$")


def _diagnose_gsm8k_messages(convert, rows):
    for index, row in enumerate(rows):
        messages = expect_dict_with(call_learner_function(convert, row, index), "messages", index)
        diagnose_messages(messages, where=f"row {index}'s messages")
        users = [m for m in messages if m["role"] == "user"]
        if not users or users[0]["content"].strip() != row["question"].strip():
            raise ExerciseProblem(f"row {index}: the user turn should hold the question, row['question'].")
        if messages[-1]["role"] != "assistant":
            raise ExerciseProblem(f"row {index}: the conversation should end with the assistant's answer.")
        final = FINAL_ANSWER.search(row["answer"]).group(1)
        reply = messages[-1]["content"]
        match = FINAL_ANSWER.search(reply)
        if not match or match.group(1) != final:
            raise ExerciseProblem(
                f"row {index}: the assistant turn lacks the final answer '#### {final}': keep the whole "
                "of row['answer'], its last line included."
            )
    return f"all {len(rows)} rows become a user question and an assistant answer ending in '#### <number>'."


def check_gsm8k_messages(convert, rows):
    """🐕 step 1: ``convert(row)`` must return ``{"messages": [user question, assistant answer]}``."""
    return verdict_of(_diagnose_gsm8k_messages, "", convert, list(rows))
