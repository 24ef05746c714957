"""Measure before and after SFT in the dataset's own format (the format ``check_sft_dataset`` named).

* conversational: the reply to each held-out conversation's first user turn (``chat_metrics``);
* prompt-completion: the reply to each prompt, the completion being the reference: through the
  chat template for conversational prompts, as plain text otherwise;
* language modeling: the held-out loss (and perplexity), and the continuation of a text's beginning.
"""

import math
from contextlib import contextmanager

import torch

from .evaluation import chat_metrics

#: Renders a one-message "conversation" as its text alone: plain prompts go through chat_metrics unchanged.
PLAIN_TEXT_TEMPLATE = "{{ messages[0]['content'] }}"


@contextmanager
def plain_text_template(tokenizer):
    """Within the block, the tokenizer "applies a chat template" by writing the prompt as it is."""
    chat_template = tokenizer.chat_template
    tokenizer.chat_template = PLAIN_TEXT_TEMPLATE
    try:
        yield tokenizer
    finally:
        tokenizer.chat_template = chat_template


def measure(model, tokenizer, examples, data_format, text_field="text", max_new_tokens=64, n_samples=3):
    """The before/after metrics of ``examples`` (held-out rows) in their format; numbers plus ``samples``."""
    if data_format == "conversational":
        return chat_metrics(model, tokenizer, examples["messages"], max_new_tokens, n_samples)
    if data_format == "conversational prompt-completion":
        conversations = [prompt + completion for prompt, completion in zip(examples["prompt"], examples["completion"])]
        return chat_metrics(model, tokenizer, conversations, max_new_tokens, n_samples)
    if data_format == "prompt-completion":
        conversations = [
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
            for prompt, completion in zip(examples["prompt"], examples["completion"])
        ]
        with plain_text_template(tokenizer):
            return chat_metrics(model, tokenizer, conversations, max_new_tokens, n_samples)
    if data_format == "language modeling":
        return text_metrics(model, tokenizer, examples[text_field], max_new_tokens, n_samples)
    raise ValueError(f"unknown format {data_format!r}: use the format check_sft_dataset names")


@torch.no_grad()
def held_out_loss(model, tokenizer, texts):
    """Mean loss per predicted token over ``texts``, each ended with EOS as SFTTrainer trains it."""
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text + tokenizer.eos_token, truncation=True, return_tensors="pt")["input_ids"].to(model.device)
        predicted = ids.shape[1] - 1
        if predicted > 0:
            total += model(input_ids=ids, labels=ids).loss.item() * predicted
            count += predicted
    return total / count


@torch.no_grad()
def continue_text(model, tokenizer, text, max_new_tokens, max_beginning=32):
    """Greedy continuation of the beginning of ``text`` (its first half, at most ``max_beginning`` tokens)."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    cut = max(1, min(max_beginning, ids.shape[1] // 2))
    beginning = ids[:, :cut].to(model.device)
    output = model.generate(
        input_ids=beginning,
        attention_mask=torch.ones_like(beginning),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    return {
        "prompt": tokenizer.decode(ids[0, :cut]),
        "reply": tokenizer.decode(output[0, cut:], skip_special_tokens=True),
        "reference": tokenizer.decode(ids[0, cut : cut + max_new_tokens]),
    }


def text_metrics(model, tokenizer, texts, max_new_tokens=64, n_samples=3):
    """Language modeling: held-out loss and perplexity (lower is better), and sample continuations."""
    was_training = model.training
    model.eval()
    texts = list(texts)
    loss = held_out_loss(model, tokenizer, texts)
    samples = [continue_text(model, tokenizer, text, max_new_tokens) for text in texts[:n_samples]]
    model.train(was_training)
    return {"held_out_loss": loss, "perplexity": math.exp(loss), "samples": samples}


def numbers(metrics):
    """The metrics without the samples: what metrics.json records."""
    return {key: value for key, value in metrics.items() if key != "samples"}


def show_metrics(metrics, title):
    """Print the figures and the samples of ``measure``'s result."""
    if "perplexity" in metrics:
        print(f"{title}: held-out loss {metrics['held_out_loss']:.3f}, perplexity {metrics['perplexity']:.1f}")
        for sample in metrics["samples"]:
            print(f"  text: {sample['prompt'][-80:]!r}\n  model continues: {sample['reply'][:120]!r}")
        return
    print(f"{title}: format adherence {metrics['format_adherence']:.2f}, exact match {metrics['exact_match']:.2f}")
    for sample in metrics["samples"]:
        print(
            f"  prompt: {sample['prompt']!r}\n  model: {sample['reply'][:120]!r} (ended its turn: {sample['stopped']})"
        )
