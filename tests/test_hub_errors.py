"""Without network, a notebook says which parameter to point at a local copy."""

import pytest
from datasets import load_dataset
from transformers import AutoTokenizer

from course_helpers import explain_hub_errors, hub_token


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)


def test_unreachable_model_names_the_parameter(offline):
    with pytest.raises(RuntimeError, match="set the notebook parameter `model_name` to a local folder"):
        with explain_hub_errors("model_name"):
            AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M")


def test_unreachable_dataset_names_the_parameter(offline, tmp_path):
    with pytest.raises(RuntimeError, match="`dataset_name`"):
        with explain_hub_errors("dataset_name"):
            load_dataset("HuggingFaceTB/smoltalk", "everyday-conversations", cache_dir=str(tmp_path / "c"))


def test_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "from-env")
    assert hub_token() == "from-env"
    monkeypatch.delenv("HF_TOKEN")
    assert hub_token() is None
