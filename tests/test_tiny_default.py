"""The tiny default is SmolLM2 in everything but size (as the fact sheet records it) and rebuilds byte for byte."""

import filecmp
import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from course_harness.tiny_default import build_tiny_default
from tests.paths import ROOT

FACT_SHEET = ROOT / "course_harness" / "smollm2_facts.json"
STATUSES = {"read", "indirect", "unconfirmed"}


def load_facts():
    return json.loads(FACT_SHEET.read_text(encoding="utf-8"))


def stored_dtype(path):
    """The one dtype every tensor of ``model.safetensors`` is stored in."""
    with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
        dtypes = {str(weights.get_tensor(name).dtype).removeprefix("torch.") for name in weights.keys()}
    return dtypes.pop() if len(dtypes) == 1 else sorted(dtypes)


def twin_values(path):
    """Every property the fact sheet names, as transformers reports it for the twin at ``path``."""
    config = AutoConfig.from_pretrained(path)
    generation = GenerationConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    rope = config.rope_parameters
    config_keys = ("architectures", "model_type", "tie_word_embeddings", "rms_norm_eps", "hidden_act")
    config_keys += ("max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")
    values = {f"config.{key}": getattr(config, key) for key in config_keys}
    values |= {f"generation_config.{key}": getattr(generation, key) for key in ("bos_token_id", "eos_token_id")}
    values |= {
        "generation_config.pad_token_id": generation.pad_token_id,
        "config.rope_theta": rope["rope_theta"],
        "config.rope_scaling": None if rope.get("rope_type", "default") == "default" else rope,
        "checkpoint.dtype": stored_dtype(path),
        "tokenizer.tokenizer_class": type(tokenizer).__name__,
        "tokenizer.model_max_length": tokenizer.model_max_length,
        "tokenizer.additional_special_tokens": tokenizer.extra_special_tokens,
        "tokenizer.special_token_ids": {str(t): i for i, t in tokenizer.added_tokens_decoder.items() if t.special},
        "tokenizer.chat_template": tokenizer.chat_template,
        "tokenizer.clean_up_tokenization_spaces": tokenizer.clean_up_tokenization_spaces,
    }
    values |= {f"tokenizer.{name}": getattr(tokenizer, name) for name in ("bos_token", "eos_token", "unk_token")}
    values["tokenizer.pad_token"] = tokenizer.pad_token
    return values


def differences(facts, twin):
    """One line per confirmed fact the twin does not share (unconfirmed facts are not compared)."""
    lines = []
    for field, fact in sorted(facts.items()):
        if fact["status"] == "unconfirmed":
            continue
        if field not in twin:
            lines.append(f"{field}: the test cannot read this property from the twin (add it to twin_values)")
        elif twin[field] != fact["value"]:
            lines.append(f"{field}: SmolLM2 has {fact['value']!r}, the twin has {twin[field]!r}")
    return lines


@pytest.fixture(scope="module")
def twin(tiny):
    return {flavour: twin_values(path) for flavour, path in tiny.items()}


@pytest.mark.parametrize("flavour", ["base", "instruct"])
def test_twin_matches_the_fact_sheet_field_by_field(twin, flavour):
    found = differences(load_facts()["facts"][flavour], twin[flavour])
    assert not found, f"the tiny {flavour} differs from SmolLM2 ({FACT_SHEET.name}):\n" + "\n".join(found)


def test_every_fact_has_a_status_and_known_sources():
    sheet = load_facts()
    for flavour, facts in sheet["facts"].items():
        for field, fact in facts.items():
            where = f"{flavour} {field}"
            assert fact["status"] in STATUSES, f"{where}: status must be one of {sorted(STATUSES)}"
            assert fact["sources"] and set(fact["sources"]) <= set(sheet["sources"]), f"{where}: unknown source"
            if fact["status"] == "unconfirmed":
                assert fact["value"] is None and "twin_uses" in fact and fact.get("note"), f"{where}: say why, no guess"
            if fact["status"] == "indirect":
                assert fact.get("note"), f"{where}: an indirect fact must say how it was deduced"


def test_a_changed_fact_is_named(twin):
    """The comparison can fail: change any one compared fact and exactly that field is reported."""
    for flavour, facts in load_facts()["facts"].items():
        for field, fact in facts.items():
            if fact["status"] == "unconfirmed":
                continue
            changed = facts | {field: fact | {"value": ["changed", fact["value"]]}}
            found = differences(changed, twin[flavour])
            assert [line.split(":")[0] for line in found] == [field], (flavour, field, found)


def test_unconfirmed_facts_say_what_the_twin_uses(tiny):
    for flavour, facts in load_facts()["facts"].items():
        for field, fact in facts.items():
            if fact["status"] == "unconfirmed":
                assert twin_values(tiny[flavour])[field] == fact["twin_uses"], f"{flavour} {field}"


def test_rebuild_is_byte_identical(tiny, tmp_path):
    again = build_tiny_default(tmp_path)
    for flavour, path in tiny.items():
        files = sorted(p.name for p in path.iterdir())
        match, mismatch, errors = filecmp.cmpfiles(path, again[flavour], files, shallow=False)
        assert not mismatch and not errors, f"{flavour}: {mismatch or errors} differ between two builds"


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


def test_digits_are_split_one_per_token(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    assert tokenizer.tokenize("2026") == ["2", "0", "2", "6"]


def test_loading_without_dtype_gives_the_checkpoint_bf16(tiny):
    """transformers 5 keeps the stored dtype: training code must ask for float32 (as for the real SmolLM2)."""
    assert AutoModelForCausalLM.from_pretrained(tiny["base"]).dtype == torch.bfloat16
    assert AutoModelForCausalLM.from_pretrained(tiny["base"], dtype=torch.float32).dtype == torch.float32


def test_model_loads_offline_and_generates(tiny, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(tiny["base"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    assert model.config.tie_word_embeddings and model.config.num_hidden_layers == 2
    inputs = tokenizer("Hello", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 3
