import json
import tomllib
from pathlib import Path

import pytest

from tests.run_notebooks import DEFAULT_OUT, run_all
from tests.tiny_default import build_tiny_default

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny():
    """The tiny default (base and instruct), built once per test session."""
    return build_tiny_default(DEFAULT_OUT / "tiny")


@pytest.fixture(scope="session")
def executed_notebooks(tiny):
    """Every notebook executed once on the tiny default; returns the summary.json content."""
    summary = run_all(DEFAULT_OUT, tiny=tiny)
    assert json.loads((DEFAULT_OUT / "executed" / "summary.json").read_text()) == summary
    return summary


@pytest.fixture(scope="session")
def repo_slug():
    """The GitHub owner/name that Colab badges and install cells must use (pyproject.toml)."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/")
