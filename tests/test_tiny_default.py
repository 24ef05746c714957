"""The tiny default mirrors the real SmolLM2 pair and rebuilds byte for byte."""

import filecmp

from transformers import AutoModelForCausalLM, AutoTokenizer

from course_harness.tiny_default import build_tiny_default


def test_rebuild_is_byte_identical(tiny, tmp_path):
    again = build_tiny_default(tmp_path)
    for flavour, path in tiny.items():
        files = sorted(p.name for p in path.iterdir())
        match, mismatch, errors = filecmp.cmpfiles(path, again[flavour], files, shallow=False)
        assert not mismatch and not errors, f"{flavour}: {mismatch or errors} differ between two builds"


def test_base_has_no_template_like_smollm2_135m(tiny):
    assert AutoTokenizer.from_pretrained(tiny["base"]).chat_template is None


def test_instruct_renders_like_smollm2_135m_instruct(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny["instruct"])
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    own_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tokenizer.apply_chat_template(own_system, tokenize=False).startswith(
        "<|im_start|>system\nBe brief.<|im_end|>"
    )
    assert tokenizer.eos_token == "<|im_end|>"


def test_digits_are_split_one_per_token(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    assert tokenizer.tokenize("2026") == ["2", "0", "2", "6"]


def test_model_loads_offline_and_generates(tiny, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(tiny["base"])
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    assert model.config.tie_word_embeddings and model.config.num_hidden_layers == 2
    inputs = tokenizer("Hello", return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] == inputs["input_ids"].shape[1] + 3
