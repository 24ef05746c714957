"""The SFT notebook provably teaches: measured before/after, on several seeds, reproducibly."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from course_harness import fixture_data
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
# LoRA trains fewer weights and wants more steps: 400 at 7e-3 reach exact match 0.875 (400 at 1e-2: 0.85,
# 300 at 1e-2: 0.75, 200 at 2e-2: 0.275); until then the suite ran 600 steps at 5e-3 (0.95)
LORA_RUN = {"use_lora": True, "max_steps": 400, "learning_rate": 7e-3}


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


AGAIN = "sft-default-again"


@pytest.fixture(scope="module")
def variants(tiny):
    """Two more seeds, the other two batching options, LoRA, and the default once more, in two kernels.

    Each kernel runs its share one after the other, the namespace emptied between runs
    (``run_variants``); the default's second run comes last in its kernel, after two others, so that
    ``test_same_seed_gives_the_same_final_loss`` also shows that a shared kernel carries nothing over.
    Steps and rates (measured when this test was written, exact match on the 40 held-out chats):

    * full fine-tuning: 200 steps at 1e-2 reach 0.85, 0.825, 0.85 on seeds 42, 1, 2 (150 steps: 0.6;
      200 at 8e-3: 0.775 to 0.725); until then the suite ran 600 steps at 2e-3 (0.925, 0.875);
    * packing fills a 128-token row with about two fixture chats, so 8 rows a step see the chats of 16
      padded rows; 250 packed steps reach 0.925 (200: 0.825). A batch of 16 packed rows is one
      2,048-token row for the attention, 4x slower a step on the CPU;
    * LoRA: see LORA_RUN.
    """
    runs = {
        "sft-seed-1": {"seed": 1},
        "sft-seed-2": {"seed": 2},
        "sft-padding_free": {"batching": "padding_free"},
        "sft-packing": {"batching": "packing", "max_steps": 250, "batch_size": 8},
        "sft-lora": LORA_RUN,
        AGAIN: {},
    }
    entries = run_variants(SFT, runs, tiny)  # dealt in turn: the default's rerun comes third in the second kernel
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


def eval_loss_in_each_layout(model_dir, tmp_path):
    """The model's eval loss on the held-out chats (batches of 16), batched with padding and padding-free."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    held_out = fixture_data.smoltalk(tmp_path / "cache")["test"]
    losses = {}
    for batching, options in {"padding": {"max_length": 128}, "padding_free": LAYOUTS["padding_free"]}.items():
        args = SFTConfig(
            output_dir=str(tmp_path / batching),
            per_device_eval_batch_size=16,
            assistant_only_loss=True,
            report_to="none",
            bf16=False,
            disable_tqdm=True,
            **options,
        )
        trainer = SFTTrainer(model, args, train_dataset=held_out, eval_dataset=held_out, processing_class=tokenizer)
        losses[batching] = trainer.evaluate()["eval_loss"]
    return losses


def test_padding_free_computes_the_loss_padding_computes(executed_notebooks, variants, tmp_path):
    """The default run's trained model, the same batches, both layouts: the same eval loss (rel 1e-6).

    A chat that attended to its neighbours in the flattened padding-free row would change it: with the
    position ids that mark where chats start dropped, it went from 0.0559 to 1.835 (measured when this test
    was written). Until then the test compared the final losses of the padding and padding-free notebook
    runs to 0.1%. At the suite's faster rate (200 steps at 1e-2, not 600 at 2e-3), fp32 rounding grows
    over the run and they end 0.35% (train loss) and 0.5% (eval loss) apart; the runs are still compared
    where nothing was trained yet, and the padding-free run must learn (test_other_batching_options_learn_too).
    """
    padding, padding_free = metrics_of(executed_notebooks[SFT]), variants["sft-padding_free"]
    assert_sftconfig_got(padding_free, "padding_free")
    assert padding_free["eval_loss_before"] == pytest.approx(padding["eval_loss_before"], rel=1e-6)
    losses = eval_loss_in_each_layout(DEFAULT_OUT / "sft_finetuning_example" / "sft-output" / "final", tmp_path)
    assert losses["padding"] == pytest.approx(padding["eval_loss_after"], rel=1e-6), "not the notebook's model?"
    assert losses["padding_free"] == pytest.approx(losses["padding"], rel=1e-6), losses


def test_same_seed_gives_the_same_final_loss(executed_notebooks, variants):
    """The default's second run (a shared kernel, after two other runs) equals ``course run``'s (own kernel)."""
    first, again = metrics_of(executed_notebooks[SFT]), variants[AGAIN]
    for key in ("final_train_loss", "eval_loss_after", "after"):
        assert again[key] == first[key], (key, again[key], first[key])


def test_saved_model_reloads_with_the_same_metrics(executed_notebooks):
    metrics = metrics_of(executed_notebooks[SFT])
    assert metrics["after_reload"] == metrics["after"]


def test_lora_trains_merges_and_reloads_unchanged(variants):
    metrics = variants["sft-lora"]
    assert metrics["after_reload"] == metrics["after"], "merge_and_unload changed the model"
    assert_it_learned(metrics)
