"""Every notebook runs offline on the tiny default, and what it stores is honest."""

import ast

import nbformat
import papermill
import pytest

from course_harness.paths import NOTEBOOK_RUNS
from course_harness.refresh import is_checked, stale_outputs
from tests.notebook_files import NOTEBOOKS, PIN, code_cells, colab_install_cells, requirement_pins

NAMES = [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_offline_on_tiny_default(executed_notebooks, name):
    entry = executed_notebooks[name]
    assert entry["status"] == "passed", f"{name} failed: {entry.get('error')}"


def test_summary_lists_every_notebook_with_status_and_seconds(executed_notebooks):
    assert sorted(executed_notebooks) == sorted(NAMES)
    for entry in executed_notebooks.values():
        assert entry["status"] in {"passed", "failed"} and entry["seconds"] > 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_only_checked_cells_store_outputs(path):
    checked = [cell for cell in code_cells(path) if is_checked(cell)]
    assert checked, "a notebook should check at least one stored output"
    for cell in code_cells(path):
        first_line = cell.source.splitlines()[0] if cell.source else ""
        if is_checked(cell):
            assert cell.outputs, f"checked cell without stored output: {first_line!r} (course refresh)"
            # nbval skips a checked cell whose execution_count is null, checking nothing
            assert cell.execution_count is not None, f"checked cell without execution_count: {first_line!r}"
        else:
            assert not cell.outputs, f"unchecked cell stores outputs: {first_line!r} (course refresh)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_parameters_cell_defaults_to_the_real_hub_names(path):
    tagged = [cell for cell in code_cells(path) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters' (papermill injects after it)"
    assert "HuggingFaceTB/" in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_colab_install_cell_pins_equal_requirements(path, repo_slug):
    cells = colab_install_cells(path)
    assert len(cells) == 1, "one Colab install cell per notebook"
    source = cells[0].source
    assert 'if "google.colab" in sys.modules' in source, "the install cell must only run in Colab"
    pins = dict(PIN.findall(source))
    assert pins, "the Colab cell should pin versions"
    assert pins == {name: requirement_pins().get(name) for name in pins}, "Colab pins differ from requirements.txt"
    assert f"git+https://github.com/{repo_slug}" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_outputs_match_a_fresh_run(executed_notebooks, path):
    """Each checked cell's stored outputs equal those of ``course run``'s fresh execution, compared as
    ``nbval --nbval-lax`` compares them (``course_harness/refresh.py``). nbval itself used to execute the
    notebooks a second time for this; the executed copy is the same notebook run with the same parameters."""
    assert executed_notebooks[path.name]["status"] == "passed"
    stale = stale_outputs(path, NOTEBOOK_RUNS / "executed" / path.name)
    assert not stale, f"stored outputs differ from a fresh run in the cells starting {stale}: run `course refresh`"


def test_a_print_the_kernel_sent_in_two_messages_is_not_stale(tmp_path):
    """A kernel may send one cell's printing in several stream messages: nbval merges them, so do we."""
    stored = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('a'); print('b')")
    stored.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\nb\n")]
    fresh = nbformat.from_dict(stored)
    fresh.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text) for text in ("a\n", "b\n")]
    changed = nbformat.from_dict(fresh)
    changed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\nc\n")]
    for name, cell in {"committed": stored, "split": fresh, "changed": changed}.items():
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / f"{name}.ipynb")
    assert stale_outputs(tmp_path / "committed.ipynb", tmp_path / "split.ipynb") == []
    assert stale_outputs(tmp_path / "committed.ipynb", tmp_path / "changed.ipynb") == ["print('a'); print('b')"]


def assigned_names(source):
    """The names a parameters cell assigns, read with Python's own parser."""
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for target in node.targets}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_papermill_reads_every_parameter(path):
    """papermill's inspector (``papermill --help-notebook``) skips a line it cannot parse, silently
    dropping that parameter; it must find exactly the names the parameters cell assigns."""
    tagged = next(cell for cell in code_cells(path) if "parameters" in cell.metadata.get("tags", []))
    inferred = {parameter["name"] for parameter in papermill.inspect_notebook(str(path)).values()}
    assert inferred == assigned_names(tagged.source), "papermill cannot read some parameters (an '=' in a comment?)"
