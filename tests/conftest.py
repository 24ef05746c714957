import json
import os
import shutil
import subprocess
import sys
import tomllib

import papermill
import pytest

from course_harness.runner import DEFAULT_OUT, offline_environment, tiny_parameters
from course_harness.tiny_default import build_tiny_default
from tests.notebook_files import NOTEBOOKS
from tests.paths import ROOT


@pytest.fixture(scope="session")
def tiny():
    """The tiny default (base and instruct), built once per test session."""
    return build_tiny_default(DEFAULT_OUT / "tiny")


@pytest.fixture(scope="session")
def course_run(tiny):
    """``course run``, the entry point a learner uses, over every notebook; returns the finished process."""
    command = shutil.which("course")
    assert command, "the `course` command is missing: pip install -r requirements.txt -e ."
    return subprocess.run([command, "run", "--out", str(DEFAULT_OUT)], capture_output=True, text=True)


@pytest.fixture(scope="session")
def executed_notebooks(course_run):
    """Every notebook executed once on the tiny default (by ``course run``); returns summary.json's content."""
    return json.loads((DEFAULT_OUT / "executed" / "summary.json").read_text())


@pytest.fixture(scope="session")
def repo_slug():
    """The GitHub owner/name that Colab badges and install cells must use (pyproject.toml)."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/")


@pytest.fixture(scope="session")
def nbval_run(tiny):
    """nbval --nbval-lax over the committed notebooks, parameterised for the tiny default.

    The copies keep the stored outputs; papermill only injects the tiny parameters. Returns the
    finished subprocess and the copies' paths; each copy's working files stay in OUT/nbval/<name>.
    """
    out = DEFAULT_OUT.parent / "nbval"
    copies = []
    for path in NOTEBOOKS:
        notebook = papermill.parameterize.parameterize_notebook(
            papermill.iorw.load_notebook_node(str(path)), tiny_parameters(path.name, tiny, out / path.stem)
        )
        copy = out / path.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        papermill.iorw.write_ipynb(notebook, str(copy))
        copies.append(copy)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", *map(str, copies)],
        cwd=out,
        env=os.environ | offline_environment(out / "datasets-cache"),
        capture_output=True,
        text=True,
    )
    return result, copies


def pytest_terminal_summary(terminalreporter):
    """Print how far each translation is behind the English, on every run."""
    from course_harness.translations import report

    terminalreporter.section("translation status (course translations --diff for details)")
    terminalreporter.write_line(report())
