"""The SFT notebook trains and measures on a dataset in each format and split layout, and stops on a bad one.

Short runs on small fixtures (``course_harness/fixtures/make_own_data.py``, tests/sft_runs.py): they prove
the plumbing, the smoltalk runs (test_sft_notebook.py) prove the learning.
"""

import math

import nbformat
import pytest

from course_harness.paths import BUILD
from course_harness.runner import OWN_DATA_SHAPES
from course_helpers import check_sft_dataset, load_sft_dataset
from tests.sft_runs import REJECTED, SFT, SHAPES, SHORT_RUN

EXPECTED = {  # format, train rows, held-out split, held-out rows, what the split cell says
    "conversational-validation": ("conversational", 32, "validation", 8, "held out: 'validation', 8 rows"),
    "chat-prompt-completion-test": ("conversational prompt-completion", 32, "test", 8, "held out: 'test', 8 rows"),
    "prompt-completion-train-only": (
        "prompt-completion",
        43,
        "train (rows held out, seed 42)",
        5,
        "no held-out split: 5 of the 48 train rows are held out (seed 42)",
    ),
    "language-modeling-named-split": ("language modeling", 32, "validation", 8, "held out: 'validation', 8 rows"),
}


@pytest.fixture(scope="module")
def shape_runs(sft_runs):
    """The SFT notebook on each own-data fixture, and on one it must refuse (tests/sft_runs.py): name → entry."""
    return {name: sft_runs[name] for name in SHAPES}


def code_cells_with(text, run_name):
    """The code cells holding ``text`` in the copy a run executed."""
    cells = nbformat.read(BUILD / run_name / SFT, as_version=4).cells
    return (cell for cell in cells if cell.cell_type == "code" and text in cell.source)


def printed(cell):
    return "".join(output.get("text", "") for output in cell.outputs)


def test_every_shape_is_covered():
    assert sorted(EXPECTED) == sorted(OWN_DATA_SHAPES)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_trains_on_the_shape_and_records_its_format_and_splits(shape_runs, name):
    entry = shape_runs[name]
    assert entry["status"] == "passed", f"{name}: {entry.get('error')}"
    metrics = entry["metrics"]
    data_format, train_rows, held_out, held_out_rows, said = EXPECTED[name]
    assert metrics["format"] == data_format
    splits = metrics["splits"]
    assert (splits["train"], splits["train_rows"], splits["held_out"], splits["held_out_rows"]) == (
        "train",
        train_rows,
        held_out,
        held_out_rows,
    )
    assert metrics["train_steps"] == SHORT_RUN["max_steps"]
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"], f"{name}: the eval loss did not fall"
    split_cell = next(code_cells_with("held_out_split(", name))
    assert said in printed(split_cell)


@pytest.mark.parametrize("name", [name for name, expected in EXPECTED.items() if expected[0] != "language modeling"])
def test_replies_are_measured_and_learn_to_end_their_turn(shape_runs, name):
    metrics = shape_runs[name]["metrics"]
    for when in ("before", "after", "after_reload"):
        assert set(metrics[when]) == {"format_adherence", "exact_match"}
    assert metrics["before"]["format_adherence"] == 0.0
    assert metrics["after"]["format_adherence"] >= 0.5, f"{name}: {metrics['after']}"
    assert metrics["after_reload"] == metrics["after"]


def test_language_modeling_is_measured_by_held_out_loss(shape_runs):
    metrics = shape_runs["language-modeling-named-split"]["metrics"]
    for when in ("before", "after", "after_reload"):
        assert set(metrics[when]) == {"held_out_loss", "perplexity"}
        assert metrics[when]["perplexity"] == pytest.approx(math.exp(metrics[when]["held_out_loss"]))
    # every held-out row is measured here, so the measure and SFTTrainer's eval loss see the same tokens
    assert metrics["splits"]["measured_rows"] == metrics["splits"]["held_out_rows"]
    assert metrics["before"]["held_out_loss"] == pytest.approx(metrics["eval_loss_before"], rel=1e-5)
    assert metrics["after"]["held_out_loss"] == pytest.approx(metrics["eval_loss_after"], rel=1e-5)
    assert metrics["after"]["held_out_loss"] < metrics["before"]["held_out_loss"]
    assert metrics["after_reload"] == metrics["after"]


def test_a_rejected_dataset_stops_with_the_checkers_message_before_training(shape_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    entry = shape_runs[REJECTED]
    assert entry["status"] == "failed" and "metrics" not in entry
    verdict = check_sft_dataset(
        load_sft_dataset(SHAPES[REJECTED]["dataset_name"]), text_field="body", eval_split="validation"
    )
    assert not verdict.ok and "there is no text column 'body'" in verdict.message
    assert entry["error"].endswith(f"ValueError: this dataset cannot be trained on as it is: {verdict.message}")
    trainer_cell = next(code_cells_with("SFTTrainer(", REJECTED))
    assert trainer_cell.execution_count is None, "the notebook went past the check"
