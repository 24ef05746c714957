"""The `course` command: one entry point, a one-line help per subcommand, honest progress and exit codes."""

import re
import shutil
import subprocess

import nbformat

from course_harness.cli import parser
from tests.notebook_files import NOTEBOOKS

CHAT = "chat_templates_example.ipynb"


def course(*args):
    return subprocess.run([shutil.which("course"), *args], capture_output=True, text=True)


def test_help_describes_every_subcommand_in_one_line():
    result = course("--help")
    assert result.returncode == 0, result.stderr
    subcommands = parser()._subparsers._group_actions[0].choices
    for name, sub in subcommands.items():
        assert name in result.stdout
        assert sub.description is None or "\n" not in sub.description
        assert course(name, "--help").returncode == 0


def test_run_prints_each_notebook_each_cell_and_the_table(course_run, executed_notebooks):
    assert course_run.returncode == 0, course_run.stdout[-3000:] + course_run.stderr[-3000:]
    out = course_run.stdout
    for number, path in enumerate(NOTEBOOKS, 1):
        # the committed code cells, and the one papermill injects after the parameters cell
        cells = sum(cell.cell_type == "code" for cell in nbformat.read(path, as_version=4).cells) + 1
        label = f"[{number}/{len(NOTEBOOKS)}] {path.name}"
        for cell in (1, cells):
            assert re.search(rf"^{re.escape(label)}: cell {cell}/{cells}, \d+ s$", out, re.M), f"no cell {cell} line"
        assert f"{label}: passed in" in out
        assert re.search(rf"^{re.escape(path.name)}\s+passed\s+[\d.]+$", out, re.M), "no summary table row"


def test_run_logs_no_kernel_or_parameter_noise(course_run):
    noise = ("without encryption", "Unable to parse", "Passed unknown parameter")
    for line in (course_run.stdout + course_run.stderr).splitlines():
        assert not any(n in line for n in noise), line


def test_run_fails_with_the_error_when_a_notebook_fails(tmp_path):
    planted = nbformat.read(NOTEBOOKS[0].parent / CHAT, as_version=4)
    at = next(i for i, c in enumerate(planted.cells) if "parameters" in c.metadata.get("tags", []))
    planted.cells.insert(at + 1, nbformat.v4.new_code_cell('raise RuntimeError("planted failure")'))
    (tmp_path / "notebooks").mkdir()
    nbformat.write(planted, tmp_path / "notebooks" / CHAT)
    result = course("run", CHAT, "--from-dir", str(tmp_path / "notebooks"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"^{CHAT}\s+failed", result.stdout, re.M), result.stdout
    assert "RuntimeError: planted failure" in result.stdout
    assert "cell 4/" in result.stdout and "cell 5/" not in result.stdout  # stopped at the planted cell


def test_run_refuses_an_unknown_notebook(tmp_path):
    result = course("run", "no_such_notebook.ipynb", "--out", str(tmp_path))
    assert result.returncode == 2 and "no notebook matched" in result.stderr
