"""The recipe's tokenizer, and the model the benchmark trains: always fp32 master weights."""

import json

import torch

from course_harness.paths import ROOT


def smollm2_135m_config():
    """SmolLM2-135M's shape and settings, from the course's fact sheet (course_harness/smollm2_facts.json)."""
    sheet = json.loads((ROOT / "course_harness" / "smollm2_facts.json").read_text())
    base = {name: fact["value"] for name, fact in sheet["facts"]["base"].items()}
    return dict(
        sheet["sizes_not_twinned"]["value"],
        rms_norm_eps=base["config.rms_norm_eps"],
        hidden_act=base["config.hidden_act"],
        tie_word_embeddings=base["config.tie_word_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": float(base["config.rope_theta"])},
        max_position_embeddings=8192,  # unconfirmed in the sheet (printouts say 8192 or 2048); the twin uses 8192
    )


def build_tiny():
    from course_harness.tiny_cache import tiny_default

    return {flavour: str(path) for flavour, path in tiny_default().items()}


def load_tokenizer(base_path):
    """The recipe's tokenizer: ChatML with generation markers, <|im_end|> ends a turn."""
    from transformers import AutoTokenizer

    from course_helpers import CHATML_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:  # the real SmolLM2 base tokenizer has none
        tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def build_model(settings, tokenizer):
    """fp32 master weights, as the notebook loads them, whatever dtype a checkpoint stores.

    transformers 5 keeps a checkpoint's own dtype unless told otherwise (SmolLM2 stores bf16), and
    bf16 master weights would lose most small AdamW updates; on a GPU the trainer's autocast still
    computes in bf16 or fp16.
    """
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(settings["seed"])
    if settings["tiny"]:
        model = AutoModelForCausalLM.from_pretrained(settings["tiny_base"], dtype=torch.float32)
    else:
        config = LlamaConfig(
            **smollm2_135m_config(),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.set_attn_implementation(settings["attn_implementation"])
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
