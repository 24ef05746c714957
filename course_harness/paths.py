"""Where things are in the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "course_harness" / "fixtures"
NOTEBOOK_DIR = ROOT / "1_instruction_tuning" / "notebooks"
BUILD = ROOT / "build"
NOTEBOOK_RUNS = BUILD / "notebooks"  # where `course run` keeps its runs unless told


def fixture_text_files():
    """The fixture files the tiny default's tokenizer learns its merges from, in a fixed order."""
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".json", ".jsonl", ".md"})
