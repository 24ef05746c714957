"""Measure what SFT changed: does the model close its turn, and does it say the right thing?"""

import importlib.metadata
import platform

import torch


def split_for_generation(messages):
    """Everything before the first assistant turn is the prompt; that turn is the reference."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:first], messages[first]["content"]


@torch.no_grad()
def generate_replies(model, tokenizer, prompts, max_new_tokens):
    """Greedy replies to a batch of chats; each is (text, stopped), stopped meaning the EOS token came."""
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    try:
        inputs = tokenizer.apply_chat_template(
            prompts, add_generation_prompt=True, padding=True, return_tensors="pt"
        ).to(model.device)
    finally:
        tokenizer.padding_side = padding_side
    output = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    replies = []
    for row in output[:, inputs["input_ids"].shape[1] :].tolist():
        stopped = tokenizer.eos_token_id in row
        if stopped:
            row = row[: row.index(tokenizer.eos_token_id)]
        replies.append((tokenizer.decode(row, skip_special_tokens=True).strip(), stopped))
    return replies


def chat_metrics(model, tokenizer, conversations, max_new_tokens=48, n_samples=3):
    """Format adherence and exact match of greedy replies to held-out conversations.

    * format adherence: share of replies that say something and then end their turn (the
      tokenizer's EOS, which must be ``<|im_end|>`` for a ChatML model) within ``max_new_tokens``.
      A reply that ends its turn at once, with nothing (or only spaces) before the EOS, does not
      count: the format is an answer closed by ``<|im_end|>``, and a model that only learned to
      stop would otherwise score 1.0;
    * exact match: share of replies equal to the reference reply, whitespace aside.
    """
    was_training = model.training
    model.eval()
    prompts, references = zip(*(split_for_generation(messages) for messages in conversations))
    replies = generate_replies(model, tokenizer, list(prompts), max_new_tokens)
    model.train(was_training)
    samples = [
        {"prompt": prompt[-1]["content"], "reply": reply, "reference": reference, "stopped": stopped}
        for prompt, reference, (reply, stopped) in list(zip(prompts, references, replies))[:n_samples]
    ]
    n = len(replies)
    return {
        "format_adherence": sum(stopped and reply != "" for reply, stopped in replies) / n,
        "exact_match": sum(stopped and reply == ref.strip() for (reply, stopped), ref in zip(replies, references)) / n,
        "samples": samples,
    }


def pick_device_and_precision():
    """bf16 on GPUs that support it, fp16 on older GPUs (Colab's T4), fp32 on CPU.

    ``including_emulation=False``: a T4 can store bf16 tensors, so the default check says yes,
    but it has no bf16 arithmetic and trains far slower than in fp16.
    """
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return "cuda", {"bf16": True, "fp16": False}
        return "cuda", {"bf16": False, "fp16": True}
    if torch.backends.mps.is_available():
        return "mps", {"bf16": False, "fp16": False}
    return "cpu", {"bf16": False, "fp16": False}


COURSE_PACKAGES = ("torch", "transformers", "trl", "datasets", "peft", "accelerate")


def _installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_report():
    """One line to paste into a bug report: versions, device and the precision we will train in.

    A notebook installs only what it uses (the chat-templates one has no trl, peft or accelerate):
    a course package that is not installed is reported as such.
    """
    versions = " ".join(f"{name}={_installed_version(name)}" for name in COURSE_PACKAGES)
    device, precision = pick_device_and_precision()
    chosen = next((name for name, on in precision.items() if on), "fp32")
    return f"python={platform.python_version()} {versions} device={device} precision={chosen}"
