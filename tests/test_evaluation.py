"""chat_metrics measures replies that answer and then end their turn; environment_report never crashes."""

import importlib.metadata

import pytest
import torch
from transformers import AutoTokenizer

from course_helpers import chat_metrics, environment_report


class ScriptedModel(torch.nn.Module):
    """Generates given token ids after each prompt, whatever the prompt: greedy decoding made predictable."""

    def __init__(self, replies, pad_token_id):
        super().__init__()
        self.replies, self.pad_token_id = replies, pad_token_id
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.anchor.device

    def generate(self, input_ids, max_new_tokens, **kwargs):
        # as generate does: a row that ended its turn is padded to the length of the longest
        rows = [reply[:max_new_tokens] + [self.pad_token_id] * (max_new_tokens - len(reply)) for reply in self.replies]
        return torch.cat([input_ids, torch.tensor(rows)], dim=1)


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return AutoTokenizer.from_pretrained(tiny["instruct"])


def conversation(answer):
    return [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": answer}]


def test_an_empty_reply_that_ends_at_once_is_not_format_adherence(tokenizer):
    eos, hello = tokenizer.eos_token_id, tokenizer.encode("Hello", add_special_tokens=False)
    replies = {
        "answers, then ends its turn": hello + [eos],
        "ends its turn at once": [eos],
        "only a space, then ends": tokenizer.encode(" ", add_special_tokens=False) + [eos],
        "answers, never ends": (hello * 8)[:8],  # fills max_new_tokens without an EOS
    }
    model = ScriptedModel(list(replies.values()), tokenizer.pad_token_id)
    metrics = chat_metrics(model, tokenizer, [conversation("Hello")] * len(replies), max_new_tokens=8, n_samples=4)
    assert [sample["stopped"] for sample in metrics["samples"]] == [True, True, True, False]
    assert metrics["format_adherence"] == 1 / 4, "only the reply that says something and then stops adheres"
    assert metrics["exact_match"] == 1 / 4


def test_environment_report_names_a_package_that_is_not_installed(monkeypatch):
    """The chat-templates notebook installs no trl on Colab: the report must say so, not crash."""
    real_version = importlib.metadata.version

    def version(name):
        if name == "trl":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    report = environment_report()
    assert "trl=not installed" in report and f"transformers={real_version('transformers')}" in report
