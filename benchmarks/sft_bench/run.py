"""The run from start to end: data, the matmul probe, every configuration, one results dict."""

import datetime
import importlib.metadata
import math
import multiprocessing
import platform
import traceback
from concurrent.futures import ProcessPoolExecutor

import torch

from . import data
from .measure import load_average
from .model import build_tiny, load_tokenizer
from .probe import compute_dtype, device_peak_flops, machine_description, matmul_probe, probe_description
from .report import add_flop_shares, findings, markdown_table, ratios_against_padding
from .train import run_config


def run_isolated(isolate, fn, *args):
    """Run ``fn(*args)`` here, or in a fresh forked process whose peak memory is its own."""
    if isolate == "none":
        return fn(*args)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
            return pool.submit(fn, *args).result()
    except Exception as error:  # the worker's traceback comes along as the cause
        details = "".join(traceback.format_exception(error))
        raise RuntimeError(f"{fn.__name__} failed in its worker:\n{details}") from error


def _dataset_summary(args, train, lengths, clipped):
    return {
        "distribution": data.distribution(args.length_scale, args.max_length),
        "conversation_tokens": data.describe_lengths(lengths),
        "exchanges": {str(k): sum(len(m) // 2 == k for m in train) for k in sorted(data.EXCHANGES)},
        "clipped_conversations_train_and_held_out": clipped,
        "seed": args.seed,
    }


def prepare(args, work_dir, threads):
    """The tokenizer, the conversations and the settings every worker gets."""
    tiny = run_isolated(args.isolate, build_tiny)
    tokenizer = load_tokenizer(tiny["base"])
    conversations, clipped = data.make_conversations(
        tokenizer, args.conversations + args.eval_conversations, args.seed, args.max_length, args.length_scale
    )
    train, held_out = conversations[: args.conversations], conversations[args.conversations :]
    lengths = [data.conversation_length(tokenizer, m) for m in train]
    padding_steps = math.ceil(len(train) / args.batch_size)
    token_lists = [tokenizer.apply_chat_template(m, return_dict=True)["input_ids"] for m in train]
    rows = data.bfd_rows(token_lists, args.max_length)
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
        "threads": threads,
        "repeats": args.repeats,
        "work_dir": str(work_dir),
        "conversations": len(train),
        "eval_conversations": len(held_out),
        "length_scale": args.length_scale,
        "packed_rows": rows,
        "padding_steps": padding_steps,
    }
    return settings, train, held_out, _dataset_summary(args, train, lengths, clipped)


def summarise_runs(runs):
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


def _one_run(args, name, settings, train, held_out, first_of_all, with_isolation, log):
    try:
        r = run_isolated(args.isolate, run_config, name, settings, train, held_out, first_of_all, with_isolation)
    except RuntimeError as error:
        log(str(error))
        return {"config": name, "error": str(error)}
    log(
        f"{name}: {r['steps']} steps, {r['real_tokens']} real / {r['processed_tokens']} processed "
        f"tokens, {r['train_seconds']:.1f}s, {r['real_tokens_per_s']:.1f} real tok/s, "
        f"held-out loss {r['eval_loss']:.4f}"
    )
    return r


def train_all(args, settings, train, held_out, log):
    """Every configuration, ``args.repeats`` times round-robin; one summary per configuration."""
    runs = {name: [] for name in args.configs}
    for repeat in range(args.repeats):
        for index, name in enumerate(args.configs):
            log(f"training {name} (run {repeat + 1}/{args.repeats}) ...")
            first_of_all = repeat == 0 and index == 0
            with_isolation = repeat == 0 and name == "packing_bfd" and not args.no_isolation_check
            runs[name].append(_one_run(args, name, settings, train, held_out, first_of_all, with_isolation, log))
    return {name: summarise_runs(found) for name, found in runs.items()}


def probe(args, device, precision, threads, when, log):
    """The matmul probe, in a worker like the training (same threads); its figures by the log."""
    found = run_isolated(args.isolate, matmul_probe, device, compute_dtype(precision), threads)
    log(f"matmul probe {when}: {found['flops_per_s_best'] / 1e9:.1f} GFLOP/s best, {found['multiplies']} multiplies")
    return found


def collect_results(args, device, precision, settings, dataset, configs, matmul, load_start):
    """Everything the run measured, as the JSON holds it (the table and the findings included)."""
    isolation = next((r.pop("isolation_check") for r in configs.values() if "isolation_check" in r), None)
    n_params = next((r["parameters"] for r in configs.values() if "parameters" in r), None)
    peak, peak_source = device_peak_flops(device, args.peak_tflops)
    add_flop_shares(configs, n_params, peak, matmul["flops_per_s"])
    real_counts = {r["real_tokens"] for r in configs.values() if "error" not in r}
    packages = ("torch", "transformers", "trl", "datasets", "accelerate")
    hidden = ("tiny_base", "tokenizer_path", "work_dir")
    tiny_name = "course tiny default (course_harness/tiny_default.py, base)"
    results = {
        "benchmark": "sft_throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_description(device)
        | {"load_average_before": load_start, "load_average_after": load_average()},
        "versions": {"python": platform.python_version()} | {p: importlib.metadata.version(p) for p in packages},
        "model": {
            "name": tiny_name if args.tiny else "SmolLM2-135M architecture, random weights",
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
        "matmul_probe": matmul,
    }
    results["ratios_vs_padding"] = ratios_against_padding(configs)
    results["findings"] = findings(results)
    results["table_markdown"] = markdown_table(results)
    return results


def run_benchmark(args, device, precision, work_dir, log):
    """Prepare the data, probe the machine, train every configuration, probe again; the results."""
    load_start = load_average()
    threads = torch.get_num_threads()
    settings, train, held_out, dataset = prepare(args, work_dir, threads)
    tokens = dataset["conversation_tokens"]
    log(
        f"{tokens['count']} conversations, {tokens['total']} real tokens (mean {tokens['mean']}, "
        f"max {tokens['max']}), {settings['packed_rows']} packed rows; device {device}, isolate={args.isolate}"
    )
    matmul = probe_description(device, compute_dtype(precision), threads)
    matmul["before_training"] = probe(args, device, precision, threads, "before training", log)
    configs = train_all(args, settings, train, held_out, log)
    matmul["after_training"] = probe(args, device, precision, threads, "after training", log)
    matmul["flops_per_s"] = max(matmul[k]["flops_per_s_best"] for k in ("before_training", "after_training"))
    return collect_results(args, device, precision, settings, dataset, configs, matmul, load_start)
