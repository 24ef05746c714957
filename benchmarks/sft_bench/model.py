"""The recipe's tokenizer, and the model the benchmark trains: always fp32 master weights."""

import torch

# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json), built here with random weights.
SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
)


def build_tiny(out_dir):
    from course_harness.tiny_default import build_tiny_default

    return {flavour: str(path) for flavour, path in build_tiny_default(out_dir).items()}


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
            **SMOLLM2_135M,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.set_attn_implementation(settings["attn_implementation"])
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
