"""🦁 helper: tell which SFT format a dataset is in, or exactly what stops TRL from using it."""

from .chat_exercises import diagnose_messages
from .verdict import ExerciseProblem, describe, verdict_of

FORMATS = {
    "conversational": "conversational ('messages'): SFTTrainer applies the chat template; "
    "use assistant_only_loss=True to learn only the replies",
    "prompt-completion": "prompt-completion ('prompt' + 'completion'): loss on the completion only by default",
    "language modeling": "language modeling ('{field}'): loss on every token, as in pre-training",
}


def sharegpt_to_messages(row):
    """Convert a ShareGPT row (``conversations`` of ``from``/``value``) to ``messages``."""
    roles = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    return {"messages": [{"role": roles[turn["from"]], "content": turn["value"]} for turn in row["conversations"]]}


def _rows(dataset):
    return [dataset[i] for i in range(len(dataset))]


def _columns(dataset):
    names = getattr(dataset, "column_names", None)
    return list(names) if names is not None else (sorted(dataset[0]) if len(dataset) else [])


def _diagnose_sft_dataset(dataset, text_field):
    if dataset is None or not hasattr(dataset, "__len__") or isinstance(dataset, (str, bytes)):
        raise ExerciseProblem(
            f"expected a datasets.Dataset (or a list of row dicts), found {describe(dataset)}: "
            "load one with load_dataset(...) or Dataset.from_list(rows)."
        )
    if isinstance(dataset, dict) and "train" in dataset:
        raise ExerciseProblem("this is a DatasetDict: pass one split, e.g. dataset['train'].")
    if len(dataset) == 0:
        raise ExerciseProblem("the dataset is empty: check the split name and any filter you applied.")
    columns = _columns(dataset)
    rows = _rows(dataset)
    if "conversations" in columns and "messages" not in columns:
        raise ExerciseProblem(
            "rows use ShareGPT's 'conversations' with 'from'/'value' turns: TRL renames the keys but keeps "
            "the roles 'human'/'gpt', which ChatML templates and assistant_only_loss do not understand. "
            "Convert them with dataset.map(sharegpt_to_messages, remove_columns=['conversations'])."
        )
    if "messages" in columns:
        for i, row in enumerate(rows):
            diagnose_messages(row["messages"], where=f"row {i}")
        return "conversational"
    if "prompt" in columns or "completion" in columns:
        missing = "completion" if "prompt" in columns else "prompt"
        if missing not in columns:
            raise ExerciseProblem(
                f"there is a '{'prompt' if missing == 'completion' else 'completion'}' column "
                f"but no '{missing}' column: prompt-completion data needs both."
            )
        for i, row in enumerate(rows):
            for part in ("prompt", "completion"):
                value = row[part]
                if isinstance(value, list):
                    diagnose_messages(value, where=f"row {i}'s {part}") if part == "completion" else None
                elif not isinstance(value, str) or not value.strip():
                    raise ExerciseProblem(f"row {i}'s {part} should be non-empty text, found {describe(value)}.")
        return "prompt-completion"
    if text_field in columns:
        for i, row in enumerate(rows):
            if not isinstance(row[text_field], str) or not row[text_field].strip():
                raise ExerciseProblem(
                    f"row {i}'s {text_field!r} should be non-empty text, found {describe(row[text_field])}."
                )
        return "language modeling"
    raise ExerciseProblem(
        f"no column that SFTTrainer understands: expected 'messages' (conversational), 'prompt' and "
        f"'completion', or a text column ({text_field!r}, set with SFTConfig(dataset_text_field=...)); "
        f"found {columns}."
    )


def check_sft_dataset(dataset, text_field="text"):
    """Return a Verdict naming the dataset's SFT format, or what to fix."""

    def diagnose():
        kind = _diagnose_sft_dataset(dataset, text_field)
        return f"format {FORMATS[kind].format(field=text_field)}."

    return verdict_of(diagnose, "")


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
    _diagnose_sft_dataset(dataset, field)
    return f"language modeling on {field!r}: the model learns to continue code from every token."


def check_code_completion_config(config, dataset):
    """🐕: the SFTConfig arguments (a dict) for training on raw code in the language-modeling format."""
    return verdict_of(_diagnose_code_completion_config, "", config, dataset)
