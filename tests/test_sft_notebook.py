"""The SFT notebook provably teaches: measured before/after, on several seeds, reproducibly."""

import json

import pytest

from course_harness.runner import DEFAULT_OUT, run_variants

SFT = "sft_finetuning_example.ipynb"
EXTRA_SEEDS = (1, 2)
# what SFTConfig received for each value of the notebook's `batching` parameter (the default is padding)
LAYOUTS = {
    "padding_free": {"padding_free": True, "packing": False, "max_length": None},
    "padding": {"padding_free": False, "packing": False},
    "packing": {"padding_free": False, "packing": True},  # TRL turns padding-free on for bfd packing itself
}
OTHER_BATCHING = ("padding_free", "packing")


def metrics_of(entry):
    """The metrics a notebook run recorded; a failed run is reported with its error, not a KeyError."""
    assert entry["status"] == "passed", f"the SFT notebook failed: {entry.get('error')}"
    return entry["metrics"]


def assert_sftconfig_got(metrics, batching):
    assert metrics["batching"] == batching
    layout = {key: metrics["layout"][key] for key in LAYOUTS[batching]}
    assert layout == LAYOUTS[batching], f"batching={batching!r} did not reach SFTConfig: {metrics['layout']}"


def assert_it_learned(metrics):
    label = f"seed {metrics['seed']}, {metrics['batching']}{' (LoRA)' if metrics['use_lora'] else ''}"
    assert metrics["before"]["format_adherence"] <= 0.1, f"{label}: the base model already ends its turns?"
    assert metrics["after"]["format_adherence"] >= 0.9, f"{label}: replies do not end with <|im_end|>: {metrics}"
    assert metrics["after"]["exact_match"] >= 0.8, f"{label}: held-out replies are wrong: {metrics}"
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"], f"{label}: eval loss did not fall"


@pytest.fixture(scope="module")
def variants(tiny):
    """The notebook again with two more seeds, the other two batching options, and LoRA, two runs at a time.

    LoRA trains fewer weights and wants a higher rate: at the full fine-tuning rate (2e-3) exact match
    stayed at 0.575 on this fixture, at 5e-3 it reached 0.95 (measured when this test was written).
    """
    runs = {f"sft-seed-{seed}": {"seed": seed} for seed in EXTRA_SEEDS}
    runs |= {f"sft-{batching}": {"batching": batching} for batching in OTHER_BATCHING}
    # A packed row of 128 tokens holds about two fixture chats (58 tokens on average), so half the
    # steps cover the same data. With the linear schedule 300 packed steps reached exact match 0.85 (200 only
    # 0.175); with 10% warmup and the cosine schedule, 300 reached 0.75 and 400 reached 0.85 (500: 0.875).
    runs["sft-packing"]["max_steps"] = 400
    runs["sft-lora"] = {"use_lora": True, "learning_rate": 5e-3}
    entries = run_variants(SFT, runs, tiny)
    return {name: metrics_of(entry) for name, entry in entries.items()}


def test_sft_notebook_records_its_metrics(executed_notebooks):
    metrics = metrics_of(executed_notebooks[SFT])
    assert {"before", "after", "after_reload", "train_seconds", "final_train_loss", "eval_loss_after"} <= set(metrics)
    assert metrics["format"] == "conversational"
    assert (metrics["splits"]["train"], metrics["splits"]["held_out"]) == ("train", "test")


def test_default_seed_learns_the_format_and_the_answers(executed_notebooks):
    assert_it_learned(metrics_of(executed_notebooks[SFT]))


@pytest.mark.parametrize("seed", EXTRA_SEEDS)
def test_other_seeds_learn_too(variants, seed):
    assert_it_learned(variants[f"sft-seed-{seed}"])


def test_default_batching_is_padding(executed_notebooks):
    """Padding bounds a step's memory for any dataset and works with every attention implementation (the lesson)."""
    assert_sftconfig_got(metrics_of(executed_notebooks[SFT]), "padding")


@pytest.mark.parametrize("batching", OTHER_BATCHING)
def test_other_batching_options_learn_too(variants, batching):
    metrics = variants[f"sft-{batching}"]
    assert_sftconfig_got(metrics, batching)
    assert_it_learned(metrics)


def test_padding_free_learns_what_padding_learns(executed_notebooks, variants):
    """Same seed, same batches, nothing truncated (max_length 128): only the layout differs.

    Conversations that attended to their neighbours in the flattened row would change the losses.
    """
    padding, padding_free = metrics_of(executed_notebooks[SFT]), variants["sft-padding_free"]
    assert_sftconfig_got(padding_free, "padding_free")
    assert_sftconfig_got(padding, "padding")
    for key in ("final_train_loss", "eval_loss_after"):
        assert padding_free[key] == pytest.approx(padding[key], rel=1e-3), (key, padding_free[key], padding[key])


def test_same_seed_gives_the_same_final_loss(executed_notebooks, nbval_run):
    """The nbval run re-executes the notebook with the same parameters: same seed, same loss."""
    again = json.loads(
        (DEFAULT_OUT.parent / "nbval" / "sft_finetuning_example" / "sft-output" / "metrics.json").read_text()
    )
    assert again["final_train_loss"] == metrics_of(executed_notebooks[SFT])["final_train_loss"]


def test_saved_model_reloads_with_the_same_metrics(executed_notebooks):
    metrics = metrics_of(executed_notebooks[SFT])
    assert metrics["after_reload"] == metrics["after"]


def test_lora_trains_merges_and_reloads_unchanged(variants):
    metrics = variants["sft-lora"]
    assert metrics["after_reload"] == metrics["after"], "merge_and_unload changed the model"
    assert_it_learned(metrics)
