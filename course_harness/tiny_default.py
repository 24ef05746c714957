"""Build the course's tiny default offline, deterministically: SmolLM2 in everything but size.

Two flavours twin the real pair, ``HuggingFaceTB/SmolLM2-135M`` (``base``) and
``HuggingFaceTB/SmolLM2-135M-Instruct`` (``instruct``), in every property a notebook or a trainer
reads: the architecture class, SmolLM2's 17 special tokens at their real ids (0 to 16), each
flavour's bos / eos / unk / pad tokens (the base model has **no** pad token), the tokenizer class,
``model_max_length``, the Instruct chat template (the real text), tied embeddings, RoPE settings,
the generation config, and a checkpoint stored in **bfloat16**, as the real ones are.

What stays tiny: a 512-token byte-level BPE vocabulary (digits split one per token, as SmolLM2
does) learned from the text of our dataset fixtures, and a 2-layer ``LlamaForCausalLM`` drawn
from a fixed seed. Nothing is downloaded; two builds are byte-identical.

The real values, with their sources, are in ``course_harness/smollm2_facts.json``;
``tests/test_tiny_default.py`` compares this twin with that sheet field by field.
Usage: ``course build-tiny OUT_DIR``.
"""

import json
from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from course_harness.paths import fixture_text_files

# SmolLM2's special tokens, in id order: ids 0 to 16 in both real tokenizers.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
]
VOCAB_SIZE = 512
SEED = 0

# SmolLM2-135M-Instruct's chat template, character for character.
SMOLLM2_INSTRUCT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# What differs between the two real repositories (tokenizer_config.json, special_tokens_map.json,
# config.json and generation_config.json); everything else is shared.
FLAVOURS = {
    "base": {
        "tokens": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
        "extra_special_tokens": SPECIAL_TOKENS,
        "model_max_length": 8192,
        "chat_template": None,
        "ids": {"bos_token_id": 0, "eos_token_id": 0},
    },
    "instruct": {
        "tokens": {
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|im_end|>",
        },
        "extra_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "model_max_length": 2048,
        "chat_template": SMOLLM2_INSTRUCT_TEMPLATE,
        "ids": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2},
    },
}
# The real tokenizer_config.json files name this class; transformers 5 loads them with it.
TOKENIZER_CLASS = "GPT2Tokenizer"
CHECKPOINT_DTYPE = torch.bfloat16


def fixture_text():
    """All fixture files, in a fixed order: the text the tokenizer learns its merges from."""
    return [p.read_text(encoding="utf-8") for p in fixture_text_files()]


def _pre_tokenizer():
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )


def learn_merges(word_counts, n_merges):
    """Plain BPE: merge the most frequent adjacent pair, ties broken by the pair itself.

    (``tokenizers``' own trainer breaks ties by hash order, so two runs can differ.)
    """
    words = {tuple(word): count for word, count in word_counts.items()}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged = {}
        for symbols, count in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def build_tokenizer():
    pre_tokenizer = _pre_tokenizer()
    word_counts = Counter(word for text in fixture_text() for word, _ in pre_tokenizer.pre_tokenize_str(text))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = learn_merges(word_counts, VOCAB_SIZE - len(SPECIAL_TOKENS) - len(alphabet))
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + alphabet + [a + b for a, b in merges])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def build_model(vocab_size, flavour):
    """A tiny LlamaForCausalLM with SmolLM2's RoPE, norm, tying and token-id settings."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        **FLAVOURS[flavour]["ids"],
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    # the generation config follows the model config, as in the real generation_config.json files
    return model.to(CHECKPOINT_DTYPE)


def _wrap(tokenizer, flavour):
    spec = FLAVOURS[flavour]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=spec["model_max_length"],
        extra_special_tokens=spec["extra_special_tokens"],
        clean_up_tokenization_spaces=False,
        **spec["tokens"],
    )
    fast.chat_template = spec["chat_template"]
    return fast


def _name_the_tokenizer_class(path):
    config_file = Path(path) / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["tokenizer_class"] = TOKENIZER_CLASS
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_tiny_default(out_dir):
    """Write ``out_dir/base`` and ``out_dir/instruct``; return their paths by flavour."""
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    paths = {}
    for flavour in FLAVOURS:
        fast = _wrap(tokenizer, flavour)
        model = build_model(len(fast), flavour)
        path = out_dir / flavour
        transformers_logging.disable_progress_bar()  # a 100k-parameter save needs no progress bar
        model.save_pretrained(path)
        transformers_logging.enable_progress_bar()
        fast.save_pretrained(path)
        _name_the_tokenizer_class(path)
        paths[flavour] = path
    return paths
