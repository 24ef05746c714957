"""Bring your own data: load a dataset from the Hub or from local files, and split off rows to measure on."""

from math import ceil
from pathlib import Path

from .verdict import ExerciseProblem

#: The file types a local dataset may come in, by extension, and the `datasets` builder that reads each.
FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
#: Held-out splits looked for, in this order, when the learner names none.
HELD_OUT_SPLITS = ("test", "validation")
#: Fewer held-out rows than this, and a before/after share says little.
MIN_HELD_OUT_ROWS = 5


def load_sft_dataset(name, config=None):
    """A DatasetDict from a Hub name, a local folder, or one local data file (which becomes 'train').

    In a folder, ``datasets`` takes the splits from the file names: ``train.jsonl``, ``test.jsonl``,
    ``validation.jsonl`` (or ``dev``/``valid``), in any of the formats of ``FILE_BUILDERS``.
    """
    from datasets import load_dataset  # imported here: course_helpers stays light to import

    path = Path(name)
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise ValueError(
                f"cannot read {path.name}: a local dataset file should end in one of {sorted(FILE_BUILDERS)}, "
                "or be a folder of such files named by split (train.jsonl, test.jsonl...)."
            )
        return load_dataset(builder, data_files=str(path))
    return load_dataset(name, config)


def held_out_rows_from(held_out_size, train_rows):
    """How many rows ``train_test_split(test_size=held_out_size)`` holds out: a share rounded up, or a count."""
    if isinstance(held_out_size, bool) or not isinstance(held_out_size, (int, float)) or held_out_size <= 0:
        raise ExerciseProblem(
            f"held_out_size should be a share of the train split (such as 0.1) or a count of rows (such as 50), "
            f"found {held_out_size!r}."
        )
    if isinstance(held_out_size, float):
        if held_out_size >= 1:
            raise ExerciseProblem(f"held_out_size {held_out_size} is a share of 1 or more: use a share below 1.")
        return ceil(held_out_size * train_rows)
    return held_out_size


def plan_splits(splits, train_split, eval_split, held_out_size):
    """The train split and the held-out split to use: ``(train, held_out or None, held-out rows, sentence)``.

    ``splits`` maps split names to row counts. ``held_out`` is None when rows must be held out of train.
    """
    names = sorted(splits)
    if train_split not in splits:
        raise ExerciseProblem(f"there is no split {train_split!r}: the splits are {names}; set train_split.")
    if eval_split is not None and eval_split not in splits:
        raise ExerciseProblem(
            f"there is no split {eval_split!r} to measure on: the splits are {names}; set eval_split to one "
            "of them, or to None to use 'test', else 'validation', else rows held out of train."
        )
    if eval_split == train_split:
        raise ExerciseProblem(
            f"eval_split is the train split {train_split!r}: measuring on rows the model trained on shows "
            "what it memorised, not what it learned. Name another split, or None."
        )
    held_out = eval_split or next((name for name in HELD_OUT_SPLITS if name in splits), None)
    if held_out is not None:
        rows = splits[held_out]
        if rows < MIN_HELD_OUT_ROWS:
            raise ExerciseProblem(
                f"the held-out split {held_out!r} has {rows} rows: measuring before and after needs at least "
                f"{MIN_HELD_OUT_ROWS}. Add rows to it, or name another split with eval_split."
            )
        return train_split, held_out, rows, f"train on {train_split!r}, measure on {held_out!r}"
    rows = held_out_rows_from(held_out_size, splits[train_split])
    if rows < MIN_HELD_OUT_ROWS:
        raise ExerciseProblem(
            f"there is no 'test' or 'validation' split, and held_out_size={held_out_size!r} holds out {rows} of "
            f"the {splits[train_split]} {train_split!r} rows: measuring needs at least {MIN_HELD_OUT_ROWS}. "
            f"Set held_out_size to a larger share, or to a count such as {MIN_HELD_OUT_ROWS}."
        )
    if rows >= splits[train_split]:
        raise ExerciseProblem(
            f"held_out_size={held_out_size!r} holds out {rows} of the {splits[train_split]} {train_split!r} rows, "
            "leaving none to train on: hold out fewer, or add rows."
        )
    size = f"{held_out_size:.0%}" if isinstance(held_out_size, float) else f"{held_out_size} rows"
    sentence = f"no 'test' or 'validation' split: train on {train_split!r} less {size} of it held out to measure on"
    return train_split, None, rows, sentence


def held_out_split(dataset, data_check, seed):
    """The train rows and the held-out rows that ``check_sft_dataset(dataset)`` planned for a DatasetDict.

    Without a held-out split, ``train_test_split`` holds out ``data_check.held_out_rows`` rows of the
    train split, the same ones for the same seed.
    """
    if not data_check:
        raise ValueError(f"the dataset cannot be used as it is: {data_check.message}")
    train = dataset[data_check.train_split]
    if data_check.eval_split is not None:
        held_out = dataset[data_check.eval_split]
        print(
            f"train: {data_check.train_split!r}, {len(train)} rows; held out: {data_check.eval_split!r}, "
            f"{len(held_out)} rows"
        )
        return train, held_out
    parts = train.train_test_split(test_size=data_check.held_out_rows, seed=seed)
    print(
        f"no held-out split: {len(parts['test'])} of the {len(train)} train rows are held out (seed {seed}); "
        f"training on the other {len(parts['train'])}"
    )
    return parts["train"], parts["test"]
