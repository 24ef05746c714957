"""The repository's own promises: CI runs the README's commands, pins are exact."""

import re

from tests.notebook_files import requirement_pins
from tests.paths import ROOT, load_module


def quick_start_commands():
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_ci_runs_the_readme_install_and_test_commands():
    install, run_notebooks, test = quick_start_commands()
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == [install, test], ".ci/run must run exactly the README's install and test commands"
    assert run_notebooks == "course run"


def test_every_requirement_is_pinned_exactly():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert len(lines) == len(requirement_pins()), "every requirement uses name==version"
    assert requirement_pins()["torch"] == "2.13.0"


def test_pin_bump_changes_exactly_the_named_package():
    bump_pins = load_module(ROOT / "tools" / "bump_pins.py")
    cell = '%pip install -q transformers==5.23.0 sentence-transformers==3.0.0 "course-helpers @ git+https://x"'
    assert bump_pins.bump(cell, "transformers", "5.24.0") == cell.replace(
        "transformers==5.23.0", "transformers==5.24.0"
    )
