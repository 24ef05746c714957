"""Measure what SFT changed: does the model close its turn, and does it say the right thing?"""

import importlib.metadata
import platform

import torch


def split_for_generation(messages):
    """Everything before the first assistant turn is the prompt; that turn is the reference."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:first], messages[first]["content"]


@torch.no_grad()
def generate_reply(model, tokenizer, prompt_messages, max_new_tokens):
    """Greedy reply to a chat; returns (text, stopped) where stopped means the end-of-turn token came."""
    inputs = tokenizer.apply_chat_template(
        prompt_messages, add_generation_prompt=True, return_tensors="pt"
    ).to(model.device)
    output = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    stopped = tokenizer.eos_token_id in new_tokens
    if stopped:
        new_tokens = new_tokens[: new_tokens.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip(), stopped


def chat_metrics(model, tokenizer, conversations, max_new_tokens=48, n_samples=3):
    """Format adherence and exact match of greedy replies to held-out conversations.

    * format adherence: share of replies that end their turn (the tokenizer's EOS, which
      must be ``<|im_end|>`` for a ChatML model) within ``max_new_tokens``;
    * exact match: share of replies equal to the reference reply, whitespace aside.
    """
    was_training = model.training
    model.eval()
    stopped_count = exact = 0
    samples = []
    for messages in conversations:
        prompt, reference = split_for_generation(messages)
        reply, stopped = generate_reply(model, tokenizer, prompt, max_new_tokens)
        stopped_count += stopped
        exact += stopped and reply == reference.strip()
        if len(samples) < n_samples:
            samples.append({"prompt": prompt[-1]["content"], "reply": reply, "reference": reference, "stopped": stopped})
    model.train(was_training)
    n = len(conversations)
    return {"format_adherence": stopped_count / n, "exact_match": exact / n, "samples": samples}


def pick_device_and_precision():
    """bf16 on GPUs that support it, fp16 on older GPUs (Colab's T4), fp32 on CPU."""
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "cuda", {"bf16": True, "fp16": False}
        return "cuda", {"bf16": False, "fp16": True}
    if torch.backends.mps.is_available():
        return "mps", {"bf16": False, "fp16": False}
    return "cpu", {"bf16": False, "fp16": False}


def environment_report():
    """One line to paste into a bug report: versions, device and the precision we will train in."""
    versions = " ".join(
        f"{name}={importlib.metadata.version(name)}"
        for name in ("torch", "transformers", "trl", "datasets", "peft", "accelerate")
    )
    device, precision = pick_device_and_precision()
    chosen = next((name for name, on in precision.items() if on), "fp32")
    return f"python={platform.python_version()} {versions} device={device} precision={chosen}"
