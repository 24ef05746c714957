"""The command line: flags, defaults, and the run from ``python benchmarks/sft_throughput.py``."""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from .layouts import CONFIGS

DESCRIPTION = "How fast is the SFT recipe we teach? Plain padding vs padding-free vs BFD packing."
# batches of 8 conversations, as in the SFT notebook
DEFAULTS = dict(max_length=256, conversations=32, eval_conversations=8, batch_size=8, length_scale=1.0)
LONG_DEFAULTS = dict(max_length=1024, conversations=128, eval_conversations=16, batch_size=8, length_scale=4.0)


def build_parser():
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    add = parser.add_argument
    add("--tiny", action="store_true", help="use the course's tiny model (quick run)")
    add("--long", action="store_true", help="max_length 1024, 4x longer turns, more data")
    add("--out", type=Path, help="write the results as JSON here")
    add("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    add("--max-length", type=int)
    add("--conversations", type=int, help="training conversations (one epoch)")
    add("--eval-conversations", type=int, help="held-out conversations for the final loss")
    add("--batch-size", type=int, help="conversations per step (padding, padding_free)")
    add(
        "--pack-batch-size",
        type=int,
        help="packed rows per step; default: the fewest that keep the padding run's number of steps",
    )
    add("--length-scale", type=float, help="multiplies the median turn lengths")
    add("--learning-rate", type=float, default=5e-5)
    add("--seed", type=int, default=42)
    add("--attn-implementation", default="sdpa", help="sdpa (default), eager, flash_attention_2, ...")
    add(
        "--isolate",
        choices=("fork", "none"),
        help="fork: each configuration in a fresh forked process (clean CPU peak RSS; default on CPU); "
        "none: all in this process (default on CUDA, where the peak counter can be reset)",
    )
    add("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    add(
        "--repeats",
        type=int,
        default=1,
        help="train every configuration this many times, round-robin, and keep the median throughput",
    )
    add("--peak-tflops", type=float, help="device peak for MFU (default: known GPUs only)")
    add("--no-isolation-check", action="store_true", help="skip the packing isolation check")
    add("--work-dir", type=Path, help="scratch folder (default: a temporary one, removed)")
    return parser


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    for key, value in (LONG_DEFAULTS if args.long else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.isolate is None:
        args.isolate = "fork" if (hasattr(os, "fork") and not torch.cuda.is_available()) else "none"
    return args


def print_report(results, out):
    print(results["table_markdown"])
    print()
    for note in results["findings"]:
        print(note)
    if not results["equal_real_tokens"]:
        print("WARNING: the configurations did not train on the same number of real tokens.")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {out}")


def main(argv=None):
    args = parse_args(argv)
    import datasets
    import transformers

    from course_helpers import pick_device_and_precision

    from .run import run_benchmark  # transformers and TRL load only once the flags are read

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, precision = pick_device_and_precision()
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="sft-throughput-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        results = run_benchmark(args, device, precision, work_dir, log)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print_report(results, args.out)
    return results
