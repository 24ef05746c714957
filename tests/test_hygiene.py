"""Committed notebooks and lessons carry nothing private or machine-specific, and never block on a login."""

import re

import nbformat
import pytest

from tests.notebook_files import NOTEBOOKS
from tests.paths import ROOT

LESSONS = sorted((ROOT / "1_instruction_tuning").glob("*.md")) + sorted(
    (ROOT / "translations").glob("*/1_instruction_tuning/*.md")
)
MACHINE_METADATA = ("execution", "ExecuteTime", "papermill", "widgets", "collapsed", "scrolled")
TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(/(?:home|root|Users|tmp|work|var|opt)/[^\s'\"]*|[A-Z]:\\\\Users)")
LOGIN_CALL = re.compile(r"^\s*[^#\n]*\b(notebook_login|login)\(", re.M)


def all_text(notebook):
    """Sources and stored outputs of a notebook, as text."""
    parts = []
    for cell in notebook.cells:
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(value) for value in output.get("data", {}).values())
            parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def hygiene_problems(notebook):
    problems = []
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        problems.append(f"invalid nbformat: {error.message}")
    for key in MACHINE_METADATA:
        if key in notebook.metadata:
            problems.append(f"notebook metadata {key!r}")
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernel name {kernel!r} (use the standard 'python3')")
    for index, cell in enumerate(notebook.cells):
        if not cell.get("id"):
            problems.append(f"cell {index} has no id")
        for key in MACHINE_METADATA:
            if key in cell.metadata:
                problems.append(f"cell {index} metadata {key!r}")
    text = all_text(notebook)
    problems += [f"token-like string {m.group(0)[:6]}…" for m in TOKEN.finditer(text)]
    problems += [f"absolute path {m.group(0)}" for m in ABSOLUTE_PATH.finditer(text)]
    problems += [f"login call: {m.group(0).strip()}" for m in LOGIN_CALL.finditer(text)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    assert hygiene_problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lesson_has_no_token_or_login_prompt(path):
    text = path.read_text(encoding="utf-8")
    assert not TOKEN.search(text) and not LOGIN_CALL.search(text)


def test_hygiene_check_catches_a_planted_token_path_and_login():
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    notebook.cells[-1].metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    notebook.cells.append(nbformat.v4.new_code_cell("from huggingface_hub import login\nlogin()"))
    notebook.cells[-1].outputs = [
        nbformat.v4.new_output("stream", text="token hf_" + "a" * 30 + " saved in /home/alice/.cache\n")
    ]
    problems = " | ".join(hygiene_problems(notebook))
    for expected in ("metadata 'execution'", "token-like string", "absolute path /home/alice", "login call"):
        assert expected in problems
