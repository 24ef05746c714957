"""Helpers for the instruction-tuning course: exercise checkers, data loading, evaluation and hub errors.

The notebooks import this package; in Colab their first cell installs it from the
course repository, next to the pinned libraries.
"""

from pathlib import Path

from .chat_exercises import check_chatml_text, check_gsm8k_messages
from .evaluation import chat_metrics, environment_report, pick_device_and_precision
from .hub import explain_hub_errors, hub_token
from .measure import measure, numbers, show_metrics
from .sft_data import held_out_split, load_sft_dataset
from .sft_exercises import check_code_completion_config, check_sft_dataset, sharegpt_to_messages
from .verdict import Verdict

#: ChatML with ``{% generation %}`` markers: the template we attach to a base model for SFT.
CHATML_TEMPLATE = (Path(__file__).parent / "chatml.jinja").read_text(encoding="utf-8")

__all__ = [
    "CHATML_TEMPLATE",
    "Verdict",
    "chat_metrics",
    "check_chatml_text",
    "check_code_completion_config",
    "check_gsm8k_messages",
    "check_sft_dataset",
    "environment_report",
    "explain_hub_errors",
    "held_out_split",
    "hub_token",
    "load_sft_dataset",
    "measure",
    "numbers",
    "pick_device_and_precision",
    "sharegpt_to_messages",
    "show_metrics",
]
