"""Build the course's tiny default model offline, deterministically.

Two flavours mirror the real SmolLM2 pair:

* ``base``: like ``HuggingFaceTB/SmolLM2-135M``, no chat template, EOS ``<|endoftext|>``;
* ``instruct``: like ``HuggingFaceTB/SmolLM2-135M-Instruct``, a ChatML template that renders
  exactly like the real one (default system prompt included), EOS ``<|im_end|>``.

Both share one byte-level BPE tokenizer (512 tokens, one token per digit, as SmolLM2 does)
learned from the text of our dataset fixtures, and one tiny ``LlamaForCausalLM`` drawn from a
fixed seed. Nothing is downloaded. Usage: ``course build-tiny OUT_DIR``.
"""

from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from course_harness.paths import FIXTURES

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
VOCAB_SIZE = 512
SEED = 0

# Renders like SmolLM2-135M-Instruct's template: ChatML, with SmolLM's default system
# prompt added when the conversation does not open with a system message.
SMOLLM2_INSTRUCT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def fixture_text():
    """All fixture files, in a fixed order: the text the tokenizer learns its merges from."""
    files = sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".json", ".jsonl", ".md"})
    return [p.read_text(encoding="utf-8") for p in files]


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


def build_model(vocab_size):
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=3,
    )
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config)


def _wrap(tokenizer, flavour):
    special = {"pad_token": "<|pad|>", "unk_token": None}
    if flavour == "base":
        special.update(bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    else:
        special.update(bos_token="<|im_start|>", eos_token="<|im_end|>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=512, **special)
    if flavour == "instruct":
        fast.chat_template = SMOLLM2_INSTRUCT_TEMPLATE
    return fast


def build_tiny_default(out_dir):
    """Write ``out_dir/base`` and ``out_dir/instruct``; return their paths by flavour."""
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    paths = {}
    for flavour in ("base", "instruct"):
        fast = _wrap(tokenizer, flavour)
        model = build_model(len(fast))
        model.config.bos_token_id = fast.bos_token_id
        model.config.eos_token_id = fast.eos_token_id
        model.config.pad_token_id = fast.pad_token_id
        model.generation_config.bos_token_id = fast.bos_token_id
        model.generation_config.eos_token_id = fast.eos_token_id
        model.generation_config.pad_token_id = fast.pad_token_id
        path = out_dir / flavour
        transformers_logging.disable_progress_bar()  # a 100k-parameter save needs no progress bar
        model.save_pretrained(path)
        transformers_logging.enable_progress_bar()
        fast.save_pretrained(path)
        paths[flavour] = path
    return paths
