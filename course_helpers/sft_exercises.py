"""🦁 helper: tell which SFT format a dataset is in, or exactly what stops TRL from using it."""

from collections.abc import Mapping
from dataclasses import dataclass

from .chat_exercises import diagnose_messages
from .sft_data import plan_splits
from .verdict import ExerciseProblem, Verdict, describe, verdict_of

FORMATS = {
    "conversational": "conversational ('messages'): SFTTrainer applies the chat template; "
    "use assistant_only_loss=True to learn only the replies",
    "conversational prompt-completion": "conversational prompt-completion ('prompt' and 'completion' messages): "
    "SFTTrainer applies the chat template; loss on the completion only by default",
    "prompt-completion": "prompt-completion ('prompt' + 'completion' text): no chat template; "
    "loss on the completion only by default",
    "language modeling": "language modeling ('{field}'): loss on every token, as in pre-training",
}


@dataclass(frozen=True, repr=False)
class DatasetVerdict(Verdict):
    """``check_sft_dataset``'s verdict and what it found: the format, and for a DatasetDict the splits to use.

    ``eval_split`` is None when ``held_out_rows`` rows are to be held out of the train split.
    """

    format: str | None = None
    train_split: str | None = None
    eval_split: str | None = None
    held_out_rows: int | None = None


def sharegpt_to_messages(row):
    """Convert a ShareGPT row (``conversations`` of ``from``/``value``) to ``messages``."""
    roles = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    return {"messages": [{"role": roles[turn["from"]], "content": turn["value"]} for turn in row["conversations"]]}


def _columns(dataset):
    names = getattr(dataset, "column_names", None)
    if names is not None:
        return list(names)
    return list(dict.fromkeys(key for row in dataset for key in row))  # a list of row dicts


def _diagnose_columns(dataset, columns, text_field):
    """Problems that the column names alone (and the first row) show."""
    if "conversations" in columns and "messages" not in columns:
        turns = dataset[0]["conversations"]
        if isinstance(turns, list) and turns and isinstance(turns[0], dict) and "from" in turns[0]:
            raise ExerciseProblem(
                "rows use ShareGPT's 'conversations' with 'from'/'value' turns. TRL 1.16 refuses them with "
                "assistant_only_loss=True ('the dataset is not conversational': it looks for 'messages'); without "
                "it, it renames the keys but keeps the roles 'human'/'gpt', so the model trains on every token, "
                "under role names ('<|im_start|>gpt') that the generation prompt ('<|im_start|>assistant') never "
                "uses. Convert them: dataset.map(sharegpt_to_messages, remove_columns=['conversations'])."
            )
        raise ExerciseProblem(
            "the conversations are in a 'conversations' column: SFTTrainer reads them only from 'messages'. "
            "Rename it: dataset.rename_column('conversations', 'messages')."
        )
    if "messages" in columns and "prompt" in columns and "completion" not in columns:
        raise ExerciseProblem(
            "rows have 'messages' and also a 'prompt' column (as HuggingFaceH4/ultrachat_200k and no_robots do): "
            "SFTTrainer sees 'prompt', takes the rows for prompt-completion and fails on the missing 'completion'. "
            "Keep the conversation only: dataset.remove_columns('prompt')."
        )
    if ("prompt" in columns) != ("completion" in columns):
        present, missing = ("prompt", "completion") if "prompt" in columns else ("completion", "prompt")
        raise ExerciseProblem(
            f"there is a {present!r} column but no {missing!r} column: prompt-completion data needs both."
        )
    if "messages" in columns or "prompt" in columns or text_field in columns:
        return
    if text_field != "text":
        raise ExerciseProblem(
            f"there is no text column {text_field!r}: the columns are {columns}; set text_field "
            "(SFTConfig's dataset_text_field) to the one that holds the text."
        )
    raise ExerciseProblem(
        f"no column that SFTTrainer understands: expected 'messages' (conversational), 'prompt' and "
        f"'completion', or a text column ({text_field!r}; name yours with text_field, SFTConfig's "
        f"dataset_text_field); found {columns}."
    )


def _row_format(row, text_field):
    """The format one row is in, from the fields it fills (None if it fills none)."""
    if row.get("messages") is not None:
        return "conversational"
    prompt, completion = row.get("prompt"), row.get("completion")
    if prompt is not None or completion is not None:
        chat = isinstance(prompt, list) or isinstance(completion, list)
        return "conversational prompt-completion" if chat else "prompt-completion"
    return "language modeling" if row.get(text_field) is not None else None


def _diagnose_prompt_completion(row, where):
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, list) != isinstance(completion, list):
        kinds = ["a list of messages" if isinstance(part, list) else describe(part) for part in (prompt, completion)]
        raise ExerciseProblem(
            f"{where}'s prompt is {kinds[0]} but its completion is {kinds[1]}: SFTTrainer cannot join a "
            "conversation and plain text. Make both messages (completion=[{'role': 'assistant', 'content': ...}]) "
            "or both text."
        )
    if isinstance(prompt, list):
        if not prompt:
            raise ExerciseProblem(f"{where}'s prompt is an empty list: it needs at least the user's turn.")
        diagnose_messages(prompt + [{"role": "assistant", "content": "…"}], where=f"{where}'s prompt")
        diagnose_messages(completion, where=f"{where}'s completion")
        roles = sorted({m["role"] for m in completion} - {"assistant"})
        if roles:
            raise ExerciseProblem(f"{where}'s completion has {roles} turns: it should hold the assistant's reply.")
        return
    for part, value in (("prompt", prompt), ("completion", completion)):
        if not isinstance(value, str) or not value.strip():
            raise ExerciseProblem(f"{where}'s {part} should be non-empty text, found {describe(value)}.")


def _diagnose_row(kind, row, where, text_field):
    if kind == "conversational":
        diagnose_messages(row["messages"], where=where)
    elif kind == "language modeling":
        if not isinstance(row[text_field], str) or not row[text_field].strip():
            raise ExerciseProblem(
                f"{where}'s {text_field!r} should be non-empty text, found {describe(row[text_field])}."
            )
    else:
        _diagnose_prompt_completion(row, where)


def _diagnose_split(dataset, text_field):
    """The format of one split's rows, or ExerciseProblem naming the first row that does not fit."""
    if dataset is None or not hasattr(dataset, "__len__") or isinstance(dataset, (str, bytes)):
        raise ExerciseProblem(
            f"expected a datasets.Dataset (or a list of row dicts), found {describe(dataset)}: "
            "load one with load_dataset(...) or Dataset.from_list(rows)."
        )
    if len(dataset) == 0:
        raise ExerciseProblem("the dataset is empty: check the split name and any filter you applied.")
    if not hasattr(dataset, "column_names") and not all(isinstance(row, dict) for row in dataset):
        raise ExerciseProblem(f"expected rows that are dicts of columns, found {describe(list(dataset)[:2])}.")
    columns = _columns(dataset)
    _diagnose_columns(dataset, columns, text_field)
    kind = first = None
    for i, row in enumerate(dataset):
        row_kind = _row_format(row, text_field)
        if row_kind is None:
            empty = [name for name in ("messages", "prompt", "completion", text_field) if name in columns]
            raise ExerciseProblem(f"row {i} has nothing to train on: its {empty} are empty (None). Drop or fill it.")
        if kind is None:
            kind, first = row_kind, i
        elif row_kind != kind:
            raise ExerciseProblem(
                f"rows mix formats: row {first} is {kind}, row {i} is {row_kind}. SFTTrainer reads every row "
                "in the format of the first and fails on the others: convert them to one format, or keep one "
                "kind, e.g. dataset.filter(lambda row: row['messages'] is not None)."
            )
        _diagnose_row(kind, row, f"row {i}", text_field)
    return kind


def _diagnose_sft_dataset(dataset, text_field, train_split="train", eval_split=None, held_out_size=0.1):
    """(format, train split, held-out split, held-out rows, sentence); the splits are None for one Dataset."""
    if not isinstance(dataset, Mapping):
        return _diagnose_split(dataset, text_field), None, None, None, None
    formats = {}

    def diagnose(name):
        try:
            formats[name] = _diagnose_split(dataset[name], text_field)
        except ExerciseProblem as problem:
            raise ExerciseProblem(f"in the split {name!r}: {problem}") from None

    if train_split in dataset:  # the rows first: a problem there matters more than the split sizes
        diagnose(train_split)
    splits = {name: len(split) for name, split in dataset.items()}
    train, held_out, rows, sentence = plan_splits(splits, train_split, eval_split, held_out_size)
    if held_out is not None:
        diagnose(held_out)
    if held_out is not None and formats[held_out] != formats[train]:
        raise ExerciseProblem(
            f"the held-out split {held_out!r} is {formats[held_out]}, but {train!r} is {formats[train]}: "
            "measure on rows in the format the model trains on."
        )
    return formats[train], train, held_out, rows, sentence


def check_sft_dataset(dataset, text_field="text", train_split="train", eval_split=None, held_out_size=0.1):
    """Return a DatasetVerdict naming the dataset's SFT format, or what to fix.

    ``dataset`` is one split (a Dataset or a list of row dicts) or a DatasetDict. For a DatasetDict the
    checker also plans the splits: train on ``train_split``, measure on ``eval_split``, or when that
    is None on 'test', else 'validation', else on ``held_out_size`` rows held out of the train split
    (a share such as 0.1, or a count).
    """
    try:
        kind, train, held_out, rows, sentence = _diagnose_sft_dataset(
            dataset, text_field, train_split, eval_split, held_out_size
        )
    except ExerciseProblem as problem:
        return DatasetVerdict(False, str(problem))
    message = f"format {FORMATS[kind].format(field=text_field)}." + (
        f" {sentence[0].upper()}{sentence[1:]}." if sentence else ""
    )
    return DatasetVerdict(True, message, format=kind, train_split=train, eval_split=held_out, held_out_rows=rows)


def _diagnose_code_length(config):
    """Source files can be thousands of tokens long: every layout must bound a row (TRL 1.16's rules)."""
    packing = bool(config.get("packing"))
    if packing and "max_length" in config and config["max_length"] is None:
        raise ExerciseProblem(
            "packing fills rows of 'max_length' tokens, and TRL refuses max_length=None with packing=True "
            "(\"When packing is enabled, `max_length` can't be `None`\"): set 'max_length', e.g. 512."
        )
    if config.get("padding_free") and not packing:
        raise ExerciseProblem(
            "padding-free cannot cut long files: TRL refuses a max_length with padding_free=True (its default "
            "is 1024), and without one a single long file fills a whole batch. Remove 'padding_free' and keep "
            "'max_length', or use packing=True."
        )
    if "max_length" in config and config["max_length"] is None:
        raise ExerciseProblem(
            "'max_length': None turns truncation off: a source file of thousands of tokens then makes a huge "
            "batch (slow, or out of memory). Set 'max_length', e.g. 512, or leave it out for SFTConfig's 1024."
        )


def _diagnose_code_completion_config(config, dataset):
    if not isinstance(config, dict):
        raise ExerciseProblem(f"expected a dict of SFTConfig arguments, found {describe(config)}.")
    field = config.get("dataset_text_field")
    if field is None:
        raise ExerciseProblem(
            "set 'dataset_text_field' to the column that holds the code, one of "
            f"{_columns(dataset)}: SFTTrainer reads 'text' by default."
        )
    if field not in _columns(dataset):
        raise ExerciseProblem(f"'dataset_text_field' is {field!r}, but the dataset's columns are {_columns(dataset)}.")
    if config.get("assistant_only_loss"):
        raise ExerciseProblem(
            "raw code has no assistant turns: remove assistant_only_loss, the model learns from every token."
        )
    _diagnose_code_length(config)
    _diagnose_split(dataset, field)
    return f"language modeling on {field!r}: the model learns to continue code from every token."


def check_code_completion_config(config, dataset):
    """🐕: the SFTConfig arguments (a dict) for training on raw code in the language-modeling format."""
    return verdict_of(_diagnose_code_completion_config, "", config, dataset)
