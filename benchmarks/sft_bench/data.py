"""Synthetic conversations whose token lengths look like chat data (see README, "The data")."""

import math
import random
import re

# Synthetic chat lengths, in tokens of the course tokenizer.
EXCHANGES = {1: 0.60, 2: 0.25, 3: 0.10, 4: 0.05}  # user+assistant pairs per conversation
USER_MEDIAN, USER_SIGMA = 10.0, 0.7
ASSISTANT_MEDIAN, ASSISTANT_SIGMA = 28.0, 1.0
MIN_USER, MIN_ASSISTANT = 2, 3


def word_pool(tokenizer):
    """Words from the course's fixture text, each with its token count after a space."""
    from course_harness.tiny_default import fixture_text

    words = sorted({w for text in fixture_text() for w in re.findall(r"[a-z]{2,12}", text.lower())})
    return [(w, len(tokenizer(" " + w, add_special_tokens=False)["input_ids"])) for w in words]


def _text(rng, pool, n_tokens):
    words, total = [], 0
    while total < n_tokens:
        word, cost = rng.choice(pool)
        words.append(word)
        total += cost
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _turn_length(rng, median, sigma, minimum, scale):
    return max(minimum, round(rng.lognormvariate(math.log(median * scale), sigma)))


def conversation_length(tokenizer, messages):
    return len(tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"])


def _clip(tokenizer, messages, max_length):
    """Drop whole exchanges from the end, then shorten the last reply (or prompt) word by word."""
    while len(messages) > 2 and conversation_length(tokenizer, messages) > max_length:
        messages = messages[:-2]
    while conversation_length(tokenizer, messages) > max_length:
        words = messages[-1]["content"].split(" ")
        prompt = messages[-2]["content"].split(" ")
        if len(words) > 1:
            messages[-1]["content"] = " ".join(words[:-1])
        elif len(prompt) > 1:
            messages[-2]["content"] = " ".join(prompt[:-1])
        else:
            raise ValueError(f"max_length={max_length} cannot hold even a one-word exchange")
    return messages


def make_conversations(tokenizer, n, seed, max_length, scale):
    """``n`` conversations whose token lengths follow the distribution in the README; deterministic."""
    rng = random.Random(seed)
    pool = word_pool(tokenizer)
    exchanges, weights = zip(*EXCHANGES.items())
    conversations, clipped = [], 0
    for _ in range(n):
        messages = []
        for _ in range(rng.choices(exchanges, weights)[0]):
            user = _turn_length(rng, USER_MEDIAN, USER_SIGMA, MIN_USER, scale)
            reply = _turn_length(rng, ASSISTANT_MEDIAN, ASSISTANT_SIGMA, MIN_ASSISTANT, scale)
            messages += [
                {"role": "user", "content": _text(rng, pool, user)},
                {"role": "assistant", "content": _text(rng, pool, reply)},
            ]
        # Clip the long tail at max_length so that no configuration truncates (equal real tokens).
        if conversation_length(tokenizer, messages) > max_length:
            clipped += 1
            messages = _clip(tokenizer, messages, max_length)
        conversations.append(messages)
    return conversations, clipped


def describe_lengths(lengths):
    ordered = sorted(lengths)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {
        "count": len(ordered),
        "total": sum(ordered),
        "mean": round(sum(ordered) / len(ordered), 1),
        "p10": pct(10),
        "p50": pct(50),
        "p90": pct(90),
        "max": ordered[-1],
        "min": ordered[0],
    }


def distribution(length_scale, max_length):
    """The generator's settings, in words, for the JSON."""
    return {
        "exchanges_per_conversation": EXCHANGES,
        "user_tokens": f"lognormal(median {USER_MEDIAN * length_scale:g}, sigma {USER_SIGMA}), min {MIN_USER}",
        "assistant_tokens": (
            f"lognormal(median {ASSISTANT_MEDIAN * length_scale:g}, sigma {ASSISTANT_SIGMA}), min {MIN_ASSISTANT}"
        ),
        "clip": f"whole conversation <= max_length={max_length} tokens",
    }


def bfd_rows(token_lists, max_length):
    """How many rows TRL's best-fit-decreasing packing makes of these conversations."""
    from datasets import Dataset
    from trl import pack_dataset

    return len(pack_dataset(Dataset.from_dict({"input_ids": token_lists}), max_length, "bfd"))
