"""How fast is the SFT recipe we teach? Plain padding vs padding-free vs BFD packing.

The recipe is the one in ``1_instruction_tuning/notebooks/sft_finetuning_example.ipynb``: a base
model, ``CHATML_TEMPLATE`` with generation markers, ``eos_token = "<|im_end|>"``, ``SFTConfig`` with
``assistant_only_loss=True`` and the precision ``pick_device_and_precision()`` chooses, and
``SFTTrainer(processing_class=tokenizer)``. Only the batching changes between configurations:

* ``padding``: the default, every batch padded to its longest conversation;
* ``padding_free``: ``padding_free=True``, the batch flattened into one row with ``position_ids``
  that restart at 0 for every conversation;
* ``packing_bfd``: ``packing=True, packing_strategy="bfd"``, conversations packed into rows of
  ``max_length`` tokens by best-fit decreasing (TRL turns padding-free on for it).

Every configuration trains one epoch over the same synthetic conversations from the same initial
weights and the same seed, so all of them train on exactly the same real (non-pad) tokens. The
script also checks that a packed conversation's logits equal its logits when run alone.

Usage (from the repository root)::

    python benchmarks/sft_throughput.py                  # SmolLM2-135M architecture, ~5 min on 2 CPU cores
    python benchmarks/sft_throughput.py --tiny           # the course's tiny model, seconds
    python benchmarks/sft_throughput.py --long           # max_length 1024, 4x longer turns, more data
    python benchmarks/sft_throughput.py --out results.json

See ``benchmarks/README.md`` for the method and the latest results.
"""

import argparse
import contextlib
import datetime
import gc
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

# The parent process tokenizes before forking the workers; keep the Rust tokenizer single-threaded
# so that the forked children do not inherit a half-used thread pool.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CONFIGS = ("padding", "padding_free", "packing_bfd")

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

# Synthetic chat lengths, in tokens of the course tokenizer (see README, "The data").
EXCHANGES = {1: 0.60, 2: 0.25, 3: 0.10, 4: 0.05}  # user+assistant pairs per conversation
USER_MEDIAN, USER_SIGMA = 10.0, 0.7
ASSISTANT_MEDIAN, ASSISTANT_SIGMA = 28.0, 1.0
MIN_USER, MIN_ASSISTANT = 2, 3

# Dense tensor-core peaks (TFLOP/s) in bf16 (fp16 where the GPU has no bf16), no sparsity, from
# the vendors' datasheets. First match wins, so the more specific names come first.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
)

# Logit agreement required between a packed conversation and the same conversation run alone.
ISOLATION_ATOL = 1e-4
ISOLATION_RTOL = 1e-4
HALF_ATOL, HALF_RTOL = 1e-2, 2e-2  # flash-attention kernels run in bf16/fp16 (not measured here)


# --------------------------------------------------------------------------------------------
# Settings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="use the course's tiny model (quick run)")
    parser.add_argument("--long", action="store_true", help="max_length 1024, 4x longer turns, more data")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--conversations", type=int, help="training conversations (one epoch)")
    parser.add_argument("--eval-conversations", type=int, help="held-out conversations for the final loss")
    parser.add_argument("--batch-size", type=int, help="conversations per step (padding, padding_free)")
    parser.add_argument(
        "--pack-batch-size",
        type=int,
        help="packed rows per step; default: the fewest that keep the padding run's number of steps",
    )
    parser.add_argument("--length-scale", type=float, help="multiplies the median turn lengths")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--attn-implementation", default="sdpa", help="sdpa (default), eager, flash_attention_2, ...")
    parser.add_argument(
        "--isolate",
        choices=("fork", "none"),
        help="fork: each configuration in a fresh forked process (clean CPU peak RSS; default on CPU); "
        "none: all in this process (default on CUDA, where the peak counter can be reset)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="train every configuration this many times, round-robin, and keep the median throughput",
    )
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: known GPUs only)")
    parser.add_argument("--no-isolation-check", action="store_true", help="skip the packing isolation check")
    parser.add_argument("--work-dir", type=Path, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)

    # batches of 8 conversations, as in the SFT notebook
    defaults = dict(max_length=256, conversations=32, eval_conversations=8, batch_size=8, length_scale=1.0)
    if args.long:
        defaults = dict(max_length=1024, conversations=128, eval_conversations=16, batch_size=8, length_scale=4.0)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.isolate is None:
        args.isolate = "fork" if (hasattr(os, "fork") and not torch.cuda.is_available()) else "none"
    return args


# --------------------------------------------------------------------------------------------
# Process isolation: every torch computation runs in a forked child when --isolate fork.


def _child(conn, fn, args):
    try:
        conn.send(("ok", fn(*args)))
    except BaseException:  # noqa: BLE001 - report anything, the parent decides
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(isolate, fn, *args):
    """Run ``fn(*args)`` here, or in a forked child whose peak memory is its own; return its result."""
    if isolate == "none":
        return fn(*args)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(send, fn, args))
    process.start()
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:
        status, payload = "error", "worker died without a result"
    process.join()
    if status != "ok":
        name = getattr(fn, "__name__", fn)
        raise RuntimeError(f"{name} failed in its worker (exit code {process.exitcode}):\n{payload}")
    return payload


# --------------------------------------------------------------------------------------------
# Tokenizer and model


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
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def build_model(settings, tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

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
        model = LlamaForCausalLM(config)
    model.set_attn_implementation(settings["attn_implementation"])
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def count_parameters(model):
    """Parameters counted once each (tied input and output embeddings are one tensor)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --------------------------------------------------------------------------------------------
# Synthetic conversations


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
        # Clip the long tail at max_length so that no configuration truncates (equal real tokens):
        # drop whole exchanges from the end, then shorten the last reply word by word.
        if conversation_length(tokenizer, messages) > max_length:
            clipped += 1
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


def bfd_rows(token_lists, max_length):
    """How many rows TRL's best-fit-decreasing packing makes of these conversations."""
    from datasets import Dataset
    from trl import pack_dataset

    return len(pack_dataset(Dataset.from_dict({"input_ids": token_lists}), max_length, "bfd"))


# --------------------------------------------------------------------------------------------
# Measurement helpers


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

    def stop(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            hwm = _proc_status_kb("VmHWM")
            if hwm is not None and "VmHWM" in self.kind:
                peak = hwm * 1024
            else:
                scale = 1 if sys.platform == "darwin" else 1024
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
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


# --------------------------------------------------------------------------------------------
# Packing isolation check


def isolation_check(model, batch, implementations, device, precision):
    """Logits of each conversation in a padding-free batch vs the same conversation run alone.

    ``batch`` is what TRL's collator feeds the model (one flattened row, ``position_ids`` restarting
    at 0 for every conversation, no ``attention_mask``). Two controls show the check can see leaks:
    the same row with positions 0..T-1 (one long causal sequence), and the same row with the
    restarting positions plus an all-ones ``attention_mask`` (what a padded collator would add).
    """
    original = model.config._attn_implementation
    inputs = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items() if k != "labels"}
    ids = inputs["input_ids"]
    starts = (inputs["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    segments = list(zip(starts[:-1], starts[1:]))
    controls = {
        "positions_not_reset": {"input_ids": ids},
        "with_all_ones_attention_mask": {
            "input_ids": ids,
            "position_ids": inputs["position_ids"],
            "attention_mask": torch.ones_like(ids),
        },
    }
    result = {"segments": [b - a for a, b in segments], "implementations": {}}
    # Controls cost two more forward passes; run them with the first implementation only.
    was_training = model.training
    model.eval()
    try:
        for implementation in implementations:
            model.set_attn_implementation(implementation)
            # fp32 for sdpa/eager, so that the tolerance can be tight; flash kernels need 16-bit inputs.
            half = "flash" in implementation
            with torch.no_grad(), autocast_context(device, precision if half else {}):
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
                for name, control_inputs in controls.items() if implementation == implementations[0] else ():
                    leaked = model(**control_inputs).logits[0].float()
                    # the first conversation is unaffected either way; look at the others
                    control = max((leaked[a:b] - x).abs().max().item() for (a, b), x in zip(segments[1:], alone[1:]))
                    entry["controls"][name] = {"max_abs_diff": control, "leak_detected": control > 10 * tolerance}
            result["implementations"][implementation] = entry
    finally:
        model.set_attn_implementation(original)
        model.train(was_training)
    result["passed"] = all(e["isolated"] for e in result["implementations"].values())
    result["controls_ran_with"] = implementations[0]
    leaks = [c["leak_detected"] for e in result["implementations"].values() for c in e["controls"].values()]
    result["controls_detect_leaks"] = bool(leaks) and all(leaks)
    return result


def isolation_implementations(attn_implementation):
    # sdpa and eager are what a CPU (or a GPU without flash-attn) gets; check the configured one too.
    return list(dict.fromkeys([attn_implementation, "sdpa", "eager"]))


# --------------------------------------------------------------------------------------------
# One configuration


def sft_config_kwargs(name, settings):
    if name == "padding":
        return {"max_length": settings["max_length"], "per_device_train_batch_size": settings["batch_size"]}
    if name == "padding_free":
        # TRL refuses padding_free with max_length and no packing (max_length would not be enforced);
        # every conversation already fits in max_length, so nothing is lost.
        return {"padding_free": True, "max_length": None, "per_device_train_batch_size": settings["batch_size"]}
    if name == "packing_bfd":
        return {
            "packing": True,
            "packing_strategy": "bfd",
            "max_length": settings["max_length"],
            "per_device_train_batch_size": settings["pack_batch_size"],
        }
    raise ValueError(name)


def run_config(name, settings, conversations, eval_conversations, with_initial_loss, with_isolation):
    import transformers
    from datasets import Dataset, disable_progress_bars
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from course_helpers import pick_device_and_precision

    disable_progress_bars()
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    device, precision = pick_device_and_precision()

    phases, phase_start = {}, time.perf_counter()

    def phase(label):
        nonlocal phase_start
        now = time.perf_counter()
        phases[label] = round(now - phase_start, 2)
        phase_start = now

    tokenizer = load_tokenizer(settings["tokenizer_path"])
    model = build_model(settings, tokenizer)
    output_dir = Path(settings["work_dir"]) / f"trainer-{name}"
    args = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=1,
        learning_rate=settings["learning_rate"],
        assistant_only_loss=True,
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=settings["seed"],
        **precision,
        **sft_config_kwargs(name, settings),
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"messages": m} for m in conversations]),
        processing_class=tokenizer,
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.durations = []

        def on_step_begin(self, *_, **__):
            if device == "cuda":
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            if device == "cuda":
                torch.cuda.synchronize()
            self.durations.append(time.perf_counter() - self.start)

    timer = StepTimer()
    trainer.add_callback(timer)
    model = trainer.model
    model_device = next(model.parameters()).device.type
    phase("build model and trainer")

    result = {
        "config": name,
        "sft_config": sft_config_kwargs(name, settings),
        "precision": precision,
        "parameters": count_parameters(model),
        "torch_threads": torch.get_num_threads(),
    }
    if with_initial_loss:
        result["initial_eval_loss"] = assistant_loss(model, tokenizer, eval_conversations, model_device, precision)
        phase("initial held-out loss")

    # One timed epoch. No warm-up: the first step's one-off costs (optimizer state, first touch of
    # the gradient buffers) are paid by every real run too; "steady" numbers leave step 1 out.
    memory = PeakMemory(model_device)
    memory.start()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    cpu_start, start = time.process_time(), time.perf_counter()
    trainer.train()
    if model_device == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    result.update(memory.stop())
    phase("train")

    batches = counter.batches[: trainer.state.global_step]
    real = sum(b["real"] for b in batches)
    processed = sum(b["processed"] for b in batches)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    loss_tokens = [b["loss_tokens"] for b in batches]
    steady_real = sum(b["real"] for b in batches[1:])
    steady_seconds = sum(timer.durations[1:])
    result.update(
        {
            "steps": trainer.state.global_step,
            "rows": sum(b["rows"] for b in batches),
            "conversations": sum(b["sequences"] for b in batches),
            "real_tokens": real,
            "processed_tokens": processed,
            "pad_tokens": processed - real,
            "pad_fraction": (processed - real) / processed,
            "train_seconds": train_seconds,
            "cpu_seconds": cpu_seconds,
            "step_seconds": timer.durations,
            "real_tokens_per_s": real / train_seconds,
            "processed_tokens_per_s": processed / train_seconds,
            "steady_real_tokens_per_s": steady_real / steady_seconds if steady_seconds > 0 else None,
            "real_tokens_per_step": [b["real"] for b in batches],
            "processed_tokens_per_step": [b["processed"] for b in batches],
            "step_losses": losses,
            "final_train_loss": losses[-1] if losses else None,
            "train_loss_token_weighted": (
                sum(loss * n for loss, n in zip(losses, loss_tokens)) / sum(loss_tokens)
                if len(losses) == len(loss_tokens)
                else None
            ),
            "load_average_at_start": load_before,
            "train_dataset_rows": len(trainer.train_dataset),
        }
    )
    result["eval_loss"] = assistant_loss(model, tokenizer, eval_conversations, model_device, precision)
    phase("held-out loss")

    if with_isolation:
        # A real packed row through TRL's own collator: the shortest row among those holding the
        # most conversations (up to 3), to keep the check cheap on a CPU.
        segments = [len(s) for s in trainer.train_dataset["seq_lengths"]]
        lengths = [sum(s) for s in trainer.train_dataset["seq_lengths"]]
        wanted = min(3, max(segments))
        if wanted >= 2:
            index = min((i for i, n in enumerate(segments) if n >= wanted), key=lambda i: lengths[i])
            batch = counter.inner([trainer.train_dataset[index]])
            result["isolation_check"] = isolation_check(
                model, batch, isolation_implementations(settings["attn_implementation"]), model_device, precision
            )
        else:
            result["isolation_check"] = {"passed": None, "reason": "no packed row holds two conversations"}
        phase("isolation check")
    result["phase_seconds"] = phases

    del trainer, model
    gc.collect()
    if model_device == "cuda":
        torch.cuda.empty_cache()
    shutil.rmtree(output_dir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------------------------
# Reporting


def machine_description(device):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    description = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda":
        description["gpu"] = torch.cuda.get_device_name(0)
    return description


def device_peak_flops(device, requested_tflops):
    if requested_tflops:
        return requested_tflops * 1e12, f"given on the command line ({requested_tflops} TFLOP/s)"
    if device != "cuda":
        return None, None
    name = torch.cuda.get_device_name(0)
    for key, tflops in GPU_PEAK_TFLOPS:
        if key in name:
            return tflops * 1e12, f"{name}: {tflops} TFLOP/s dense bf16/fp16 tensor-core peak (datasheet)"
    return None, f"{name}: unknown peak, pass --peak-tflops"


def ratios_against_padding(configs):
    base = configs.get("padding")
    if not base or "error" in base:
        return {}
    ratios = {}
    for name, result in configs.items():
        if "error" in result:
            continue
        ratios[name] = {
            "real_tokens_per_s": result["real_tokens_per_s"] / base["real_tokens_per_s"],
            "steady_real_tokens_per_s": (
                result["steady_real_tokens_per_s"] / base["steady_real_tokens_per_s"]
                if result["steady_real_tokens_per_s"] and base["steady_real_tokens_per_s"]
                else None
            ),
            "train_seconds": result["train_seconds"] / base["train_seconds"],
            "processed_tokens": result["processed_tokens"] / base["processed_tokens"],
            "peak_memory": result["peak_memory_mb"] / base["peak_memory_mb"],
            "peak_memory_increase": (
                result["peak_memory_increase_mb"] / base["peak_memory_increase_mb"]
                if result.get("peak_memory_increase_mb") and base.get("peak_memory_increase_mb")
                else None
            ),
            "eval_loss_minus_padding": result["eval_loss"] - base["eval_loss"],
        }
    return ratios


def summarise_runs(name, runs):
    """One result per configuration: the run with the median throughput, plus every run's numbers."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    ordered = sorted(good, key=lambda r: r["real_tokens_per_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    for r in good:  # the isolation check and the initial loss ran in the first run only
        for key in ("isolation_check", "initial_eval_loss"):
            if key in r:
                chosen[key] = r[key]
    chosen["runs"] = len(good)
    chosen["real_tokens_per_s_all_runs"] = [r["real_tokens_per_s"] for r in good]
    chosen["failed_runs"] = len(runs) - len(good)
    return chosen


def markdown_table(results):
    configs, ratios = results["configs"], results["ratios_vs_padding"]
    mfu = any(r.get("mfu_real_tokens") is not None for r in configs.values() if "error" not in r)
    header = [
        "configuration",
        "steps",
        "real tokens",
        "processed tokens",
        "padding share",
        "real tok/s",
        "vs padding",
        "steady tok/s (after step 1)",
        "peak mem MB (+ during training)",
        "vs padding (+)",
        "final train loss",
        "held-out loss",
    ] + (["MFU"] if mfu else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in configs.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'].strip().splitlines()[-1]} |")
            continue
        q = ratios.get(name, {})
        row = [
            name,
            str(r["steps"]),
            str(r["real_tokens"]),
            str(r["processed_tokens"]),
            f"{r['pad_fraction']:.1%}",
            f"{r['real_tokens_per_s']:.1f}",
            f"{q['real_tokens_per_s']:.2f}x" if q else "-",
            f"{r['steady_real_tokens_per_s']:.1f}" if r["steady_real_tokens_per_s"] else "-",
            f"{r['peak_memory_mb']:.0f} (+{r['peak_memory_increase_mb']:.0f})"
            if r.get("peak_memory_increase_mb") is not None
            else f"{r['peak_memory_mb']:.0f}",
            f"{q['peak_memory']:.2f}x ({q['peak_memory_increase']:.2f}x)"
            if q and q.get("peak_memory_increase")
            else (f"{q['peak_memory']:.2f}x" if q else "-"),
            f"{r['final_train_loss']:.4f}",
            f"{r['eval_loss']:.4f}",
        ]
        if mfu:
            row.append(f"{r['mfu_real_tokens']:.1%}" if r.get("mfu_real_tokens") is not None else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def findings(results):
    notes = []
    configs = {k: v for k, v in results["configs"].items() if "error" not in v}
    device = results["machine"]["device"]
    attn = results["settings"]["attn_implementation"]
    check = results.get("isolation_check")
    if check and check.get("passed") is None:
        notes.append(f"Isolation check not run: {check.get('reason')}.")
    elif check:
        for implementation, entry in check["implementations"].items():
            verdict = "isolates" if entry["isolated"] else "does NOT isolate"
            notes.append(
                f"BFD packing with attn_implementation={implementation} on {device} {verdict} the packed "
                f"conversations: max |logit difference| packed vs alone = {entry['max_abs_diff']:.2e} "
                f"(tolerance {entry['tolerance']:.1e}) over {len(check['segments'])} conversations."
            )
            for name, control in entry["controls"].items():
                notes.append(
                    f"  control '{name}' ({implementation}): max |difference| {control['max_abs_diff']:.2e}, "
                    f"leak {'detected' if control['leak_detected'] else 'NOT detected'}."
                )
        if not check["controls_detect_leaks"]:
            notes.append("A control showed no leak, so the check may be blind here: treat it as inconclusive.")
    if "padding" in configs and "padding_free" in configs:
        diff = configs["padding_free"]["eval_loss"] - configs["padding"]["eval_loss"]
        same_batches = configs["padding_free"]["real_tokens_per_step"] == configs["padding"]["real_tokens_per_step"]
        notes.append(
            f"padding_free without FlashAttention ({attn}) trained on the same batches as padding "
            f"({'identical' if same_batches else 'DIFFERENT'} real tokens per step); held-out loss differs by "
            f"{diff:+.2e}, so the flattened conversations did {'not ' if abs(diff) < 1e-3 else ''}leak into each other."
        )
    if configs:
        fastest = max(configs, key=lambda k: configs[k]["real_tokens_per_s"])
        smallest = min(configs, key=lambda k: configs[k]["peak_memory_mb"])
        notes.append(f"Fastest on this {device} run: {fastest}; lowest peak memory: {smallest}.")
    return notes


# --------------------------------------------------------------------------------------------
# Main


def prepare(args, work_dir):
    """The tokenizer, the conversations and the settings every worker gets."""
    tiny = run_isolated(args.isolate, build_tiny, str(work_dir / "tiny"))
    tokenizer = load_tokenizer(tiny["base"])
    conversations, clipped = make_conversations(
        tokenizer, args.conversations + args.eval_conversations, args.seed, args.max_length, args.length_scale
    )
    train, held_out = conversations[: args.conversations], conversations[args.conversations :]
    lengths = [conversation_length(tokenizer, m) for m in train]
    padding_steps = math.ceil(len(train) / args.batch_size)
    rows = bfd_rows([tokenizer.apply_chat_template(m, return_dict=True)["input_ids"] for m in train], args.max_length)
    settings = {
        "tiny": args.tiny,
        "tiny_base": tiny["base"],
        "tokenizer_path": tiny["base"],
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "pack_batch_size": args.pack_batch_size or math.ceil(rows / padding_steps),
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "attn_implementation": args.attn_implementation,
        "isolate": args.isolate,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "work_dir": str(work_dir),
        "conversations": len(train),
        "eval_conversations": len(held_out),
        "length_scale": args.length_scale,
        "packed_rows": rows,
        "padding_steps": padding_steps,
    }
    dataset = {
        "distribution": {
            "exchanges_per_conversation": EXCHANGES,
            "user_tokens": f"lognormal(median {USER_MEDIAN * args.length_scale:g}, sigma {USER_SIGMA}), min {MIN_USER}",
            "assistant_tokens": (
                f"lognormal(median {ASSISTANT_MEDIAN * args.length_scale:g}, sigma {ASSISTANT_SIGMA}), "
                f"min {MIN_ASSISTANT}"
            ),
            "clip": f"whole conversation <= max_length={args.max_length} tokens",
        },
        "conversation_tokens": describe_lengths(lengths),
        "exchanges": {str(k): sum(len(m) // 2 == k for m in train) for k in sorted(EXCHANGES)},
        "clipped_conversations_train_and_held_out": clipped,
        "seed": args.seed,
    }
    return settings, train, held_out, dataset


def train_all(args, settings, train, held_out, log):
    """Every configuration, ``args.repeats`` times round-robin; one summary per configuration."""
    runs = {name: [] for name in args.configs}
    for repeat in range(args.repeats):
        for index, name in enumerate(args.configs):
            log(f"training {name} (run {repeat + 1}/{args.repeats}) ...")
            first = repeat == 0
            try:
                r = run_isolated(
                    args.isolate,
                    run_config,
                    name,
                    settings,
                    train,
                    held_out,
                    first and index == 0,
                    first and name == "packing_bfd" and not args.no_isolation_check,
                )
            except RuntimeError as error:
                r = {"config": name, "error": str(error)}
                log(str(error))
            runs[name].append(r)
            if "error" not in r:
                log(
                    f"{name}: {r['steps']} steps, {r['real_tokens']} real / {r['processed_tokens']} processed "
                    f"tokens, {r['train_seconds']:.1f}s, {r['real_tokens_per_s']:.1f} real tok/s, "
                    f"held-out loss {r['eval_loss']:.4f}"
                )
    return {name: summarise_runs(name, found) for name, found in runs.items()}


def add_mfu(configs, n_params, peak):
    for result in configs.values():
        if "error" in result:
            continue
        for tokens in ("real_tokens", "processed_tokens"):
            work = 6 * n_params * result[tokens]
            result[f"mfu_{tokens}"] = work / result["train_seconds"] / peak if peak else None


def main(argv=None):
    args = parse_args(argv)
    import datasets
    import transformers

    from course_helpers import pick_device_and_precision

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)

    device, precision = pick_device_and_precision()
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="sft-throughput-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        settings, train, held_out, dataset = prepare(args, work_dir)
        tokens = dataset["conversation_tokens"]
        log(
            f"{tokens['count']} conversations, {tokens['total']} real tokens (mean {tokens['mean']}, "
            f"max {tokens['max']}), {settings['packed_rows']} packed rows; device {device}, isolate={args.isolate}"
        )
        configs = train_all(args, settings, train, held_out, log)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)

    isolation = next((r.pop("isolation_check") for r in configs.values() if "isolation_check" in r), None)
    n_params = next((r["parameters"] for r in configs.values() if "parameters" in r), None)
    peak, peak_source = device_peak_flops(device, args.peak_tflops)
    add_mfu(configs, n_params, peak)
    real_counts = {r["real_tokens"] for r in configs.values() if "error" not in r}
    packages = ("torch", "transformers", "trl", "datasets", "accelerate")
    hidden = ("tiny_base", "tokenizer_path", "work_dir")
    results = {
        "benchmark": "sft_throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_description(device)
        | {
            "load_average_before": load_start,
            "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "versions": {"python": platform.python_version()} | {p: importlib.metadata.version(p) for p in packages},
        "model": {
            "name": "course tiny default (course_harness/tiny_default.py, base)"
            if args.tiny
            else "SmolLM2-135M architecture, random weights",
            "parameters": n_params,
            "attn_implementation": args.attn_implementation,
        },
        "settings": {k: v for k, v in settings.items() if k not in hidden}
        | {
            "precision": precision,
            "mfu_peak": peak_source,
            "mfu_work": "6 * parameters * tokens / train seconds (attention scores not counted)",
        },
        "dataset": dataset,
        "equal_real_tokens": real_counts == {dataset["conversation_tokens"]["total"]},
        "configs": configs,
        "isolation_check": isolation,
    }
    results["ratios_vs_padding"] = ratios_against_padding(configs)
    results["findings"] = findings(results)
    results["table_markdown"] = markdown_table(results)

    print(results["table_markdown"])
    print()
    for note in results["findings"]:
        print(note)
    if not results["equal_real_tokens"]:
        print("WARNING: the configurations did not train on the same number of real tokens.")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
