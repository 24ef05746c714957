"""What one training run measures: peak memory, tokens per batch, step times, held-out loss."""

import contextlib
import gc
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from transformers import TrainerCallback


def load_average():
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def _proc_status_kb(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of one training run: CUDA allocator peak, or the process's peak RSS on CPU.

    On Linux the RSS high-water mark (VmHWM) is reset by writing 5 to /proc/self/clear_refs, so
    the peak is this run's; elsewhere it falls back to ru_maxrss, the process's peak so far.
    """

    def __init__(self, device):
        self.device = device

    def start(self):
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.kind = "cuda max_memory_allocated"
            self.before = torch.cuda.memory_allocated()
            return
        self.kind = "peak RSS (ru_maxrss, process lifetime)"
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            self.kind = "peak RSS (VmHWM, reset before training)"
        except OSError:
            pass
        rss = _proc_status_kb("VmRSS")
        self.before = rss * 1024 if rss is not None else None

    def _peak(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated()
        hwm = _proc_status_kb("VmHWM")
        if hwm is not None and "VmHWM" in self.kind:
            return hwm * 1024
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def stop(self):
        peak = self._peak()
        return {
            "peak_memory_mb": round(peak / 2**20, 1),
            "memory_before_train_mb": round(self.before / 2**20, 1) if self.before is not None else None,
            "peak_memory_increase_mb": round((peak - self.before) / 2**20, 1) if self.before is not None else None,
            "memory_kind": self.kind,
        }


class CountingCollator:
    """Wraps the trainer's collator and records, per batch, the real and the processed tokens."""

    def __init__(self, inner):
        self.inner = inner
        self.batches = []

    def __call__(self, examples):
        batch = self.inner(examples)
        self.batches.append(
            {
                "rows": len(examples),
                "sequences": sum(len(e["seq_lengths"]) if "seq_lengths" in e else 1 for e in examples),
                "real": sum(len(e["input_ids"]) for e in examples),
                "processed": int(batch["input_ids"].numel()),
                "loss_tokens": int((batch["labels"][..., 1:] != -100).sum()),
            }
        )
        return batch


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step, from ``on_step_begin`` to ``on_step_end``."""

    def __init__(self, device):
        self.device = device
        self.durations = []

    def _now(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step_begin(self, *_, **__):
        self.start = self._now()

    def on_step_end(self, *_, **__):
        self.durations.append(self._now() - self.start)


class Phases:
    """Seconds spent in each phase of a worker, in order."""

    def __init__(self):
        self.seconds, self.start = {}, time.perf_counter()

    def done(self, label):
        now = time.perf_counter()
        self.seconds[label] = round(now - self.start, 2)
        self.start = now


def autocast_context(device, precision):
    if precision.get("bf16"):
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    if precision.get("fp16"):
        return torch.autocast(device_type=device, dtype=torch.float16)
    return contextlib.nullcontext()


def assistant_loss(model, tokenizer, conversations, device, precision):
    """Mean NLL over assistant tokens, one conversation at a time (no padding, no packing)."""
    was_training = model.training
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for messages in conversations:
            encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
            ids = torch.tensor([encoded["input_ids"]], device=device)
            mask = torch.tensor(encoded["assistant_masks"][1:], device=device, dtype=torch.bool)
            with autocast_context(device, precision):
                logits = model(input_ids=ids).logits[0, :-1].float()
            losses = F.cross_entropy(logits, ids[0, 1:], reduction="none")
            nll += losses[mask].sum().item()
            count += int(mask.sum())
    model.train(was_training)
    return nll / count
