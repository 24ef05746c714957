"""No notebook, lesson or solution teaches an argument the pinned libraries removed or deprecated."""

import re

import pytest

from course_harness.lesson_blocks import python_blocks
from tests.notebook_files import NOTEBOOKS, code_cells
from tests.paths import ROOT

# trl 1.x removed the first five; transformers 5.23 deprecates gradient_checkpointing for activation_checkpointing.
REMOVED = {
    r"[(,]\s*tokenizer\s*=[^=]": "SFTTrainer(processing_class=...)",  # the keyword argument, not a variable
    r"\bevaluation_strategy\b": "eval_strategy",
    r"\bmax_seq_length\b": "max_length",
    r"\buse_mps_device\b": "nothing: the device is picked automatically",
    r"\bsetup_chat_format\b": "attach a chat template to the tokenizer",
    r"\bgradient_checkpointing\b": "activation_checkpointing",
}
LESSON_FILES = sorted((ROOT / "1_instruction_tuning").glob("*.md")) + sorted(
    (ROOT / "translations").glob("*/1_instruction_tuning/*.md")
)
PYTHON_FILES = sorted((ROOT / "1_instruction_tuning").rglob("*.py")) + sorted((ROOT / "course_helpers").glob("*.py"))


def code_of(path):
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in code_cells(path))
    if path.suffix == ".md":  # only the code blocks: prose may say which names are gone
        return "\n".join(block.source for block in python_blocks(path.read_text(encoding="utf-8")))
    return path.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS + LESSON_FILES + PYTHON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_removed_or_deprecated_argument(path):
    code = code_of(path)
    found = {pattern: fix for pattern, fix in REMOVED.items() if re.search(pattern, code)}
    assert not found, f"{path.name} uses removed or deprecated names; use instead: {found}"
