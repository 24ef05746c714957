"""Do packed conversations see one another? Logits in a packed row vs each conversation alone."""

import torch

from .measure import autocast_context

# Logit agreement required between a packed conversation and the same conversation run alone.
ISOLATION_ATOL = 1e-4
ISOLATION_RTOL = 1e-4
HALF_ATOL, HALF_RTOL = 1e-2, 2e-2  # flash-attention kernels run in bf16/fp16 (not measured here)


def isolation_implementations(attn_implementation):
    # sdpa and eager are what a CPU (or a GPU without flash-attn) gets; check the configured one too.
    return list(dict.fromkeys([attn_implementation, "sdpa", "eager"]))


def _leak_controls(inputs):
    """The same row with positions 0..T-1, and with restarting positions plus an all-ones mask."""
    ids = inputs["input_ids"]
    return {
        "positions_not_reset": {"input_ids": ids},
        "with_all_ones_attention_mask": {
            "input_ids": ids,
            "position_ids": inputs["position_ids"],
            "attention_mask": torch.ones_like(ids),
        },
    }


def _compare(model, inputs, segments, controls, half):
    """One attention implementation: packed vs alone, and how far each control moves the logits."""
    ids = inputs["input_ids"]
    alone = [model(input_ids=ids[:, a:b]).logits[0].float() for a, b in segments]
    scale = max(x.abs().max().item() for x in alone)
    tolerance = (HALF_ATOL + HALF_RTOL * scale) if half else (ISOLATION_ATOL + ISOLATION_RTOL * scale)
    packed = model(**inputs).logits[0].float()
    diffs = [(packed[a:b] - x).abs().max().item() for (a, b), x in zip(segments, alone)]
    entry = {
        "max_abs_diff": max(diffs),
        "per_segment_max_abs_diff": diffs,
        "logit_scale": scale,
        "tolerance": tolerance,
        "isolated": max(diffs) <= tolerance,
        "controls": {},
    }
    for name, control_inputs in controls.items():
        leaked = model(**control_inputs).logits[0].float()
        # the first conversation is unaffected either way; look at the others
        control = max((leaked[a:b] - x).abs().max().item() for (a, b), x in zip(segments[1:], alone[1:]))
        entry["controls"][name] = {"max_abs_diff": control, "leak_detected": control > 10 * tolerance}
    return entry


def isolation_check(model, batch, implementations, device, precision):
    """Logits of each conversation in a padding-free batch vs the same conversation run alone.

    ``batch`` is what TRL's collator feeds the model (one flattened row, ``position_ids`` restarting
    at 0 for every conversation, no ``attention_mask``). Two controls show the check can see leaks:
    the same row with positions 0..T-1 (one long causal sequence), and the same row with the
    restarting positions plus an all-ones ``attention_mask`` (what a padded collator would add).
    Controls cost two more forward passes; they run with the first implementation only.
    """
    original = model.config._attn_implementation
    inputs = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items() if k != "labels"}
    starts = (inputs["position_ids"][0] == 0).nonzero().flatten().tolist() + [inputs["input_ids"].shape[1]]
    segments = list(zip(starts[:-1], starts[1:]))
    result = {"segments": [b - a for a, b in segments], "implementations": {}}
    was_training = model.training
    model.eval()
    try:
        for implementation in implementations:
            model.set_attn_implementation(implementation)
            # fp32 for sdpa/eager, so that the tolerance can be tight; flash kernels need 16-bit inputs.
            half = "flash" in implementation
            controls = _leak_controls(inputs) if implementation == implementations[0] else {}
            with torch.no_grad(), autocast_context(device, precision if half else {}):
                result["implementations"][implementation] = _compare(model, inputs, segments, controls, half)
    finally:
        model.set_attn_implementation(original)
        model.train(was_training)
    result["passed"] = all(e["isolated"] for e in result["implementations"].values())
    result["controls_ran_with"] = implementations[0]
    leaks = [c["leak_detected"] for e in result["implementations"].values() for c in e["controls"].values()]
    result["controls_detect_leaks"] = bool(leaks) and all(leaks)
    return result


def check_a_packed_row(trainer, collator, attn_implementation, device, precision):
    """A real packed row through TRL's own collator: the shortest row among those holding the most
    conversations (up to 3), to keep the check cheap on a CPU."""
    segments = [len(s) for s in trainer.train_dataset["seq_lengths"]]
    lengths = [sum(s) for s in trainer.train_dataset["seq_lengths"]]
    wanted = min(3, max(segments))
    if wanted < 2:
        return {"passed": None, "reason": "no packed row holds two conversations"}
    index = min((i for i, n in enumerate(segments) if n >= wanted), key=lambda i: lengths[i])
    batch = collator([trainer.train_dataset[index]])
    implementations = isolation_implementations(attn_implementation)
    return isolation_check(trainer.model, batch, implementations, device, precision)
