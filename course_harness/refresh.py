"""Refresh the outputs stored in the committed notebooks (``course refresh [NOTEBOOK ...]``).

Executes the notebooks on the tiny default (as ``course run`` does), then writes back
into each committed notebook the outputs of its checked cells (``# NBVAL_CHECK_OUTPUT``) and
clears every other output, so that a committed notebook only shows outputs the code really
produced and that do not depend on model weights. Review the diff before committing.
"""

import copy
from collections import defaultdict

import nbformat
from nbval.plugin import coalesce_streams, transform_streams_for_comparison

from course_harness.paths import NOTEBOOK_RUNS
from course_harness.runner import notebooks, print_table, run_all

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
VOLATILE_METADATA = ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime")
# what ``nbval --nbval-lax`` leaves out when it compares a checked cell's outputs (nbval/plugin.py)
NOT_COMPARED = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
)


def is_checked(cell):
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def store_checked_outputs(committed_path, executed_path):
    committed = nbformat.read(committed_path, as_version=4)
    executed = {cell.id: cell for cell in nbformat.read(executed_path, as_version=4).cells}
    for cell in committed.cells:
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs = coalesce_streams(executed[cell.id].outputs)
            cell.execution_count = executed[cell.id].execution_count
        else:
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(committed)
    nbformat.write(committed, committed_path)


def comparable(outputs):
    """A cell's outputs as nbval compares them: each field (MIME types flattened) to its values.

    Like nbval, it first merges the outputs of each stream: a kernel may send one cell's printing in one
    message or in several, as it flushes.
    """
    fields = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(copy.deepcopy(outputs))):
        for key, value in output.items():
            if key == "data":
                for mime, data in value.items():
                    if mime not in NOT_COMPARED:
                        fields[mime].append(data)
            elif key not in NOT_COMPARED:
                fields[key].append(value)
    return dict(fields)


def stale_outputs(committed_path, executed_path):
    """The checked cells whose stored outputs differ from a fresh run's (nbval's comparison): first lines."""
    executed = {cell.id: cell for cell in nbformat.read(executed_path, as_version=4).cells}
    return [
        cell.source.splitlines()[1] if cell.source.startswith(CHECK_MARK) else cell.source.splitlines()[0]
        for cell in nbformat.read(committed_path, as_version=4).cells
        if is_checked(cell) and comparable(cell.outputs) != comparable(executed[cell.id].outputs)
    ]


def refresh(selected=None):
    """Run the selected notebooks (all by default) and store their checked outputs; 0 when done."""
    summary = run_all(NOTEBOOK_RUNS, selected, progress=lambda line: print(line, flush=True))
    print_table(summary)
    if any(entry["status"] != "passed" for entry in summary.values()):
        print("not refreshing: a notebook failed")
        return 1
    for notebook in notebooks():
        if notebook.name in summary:
            store_checked_outputs(notebook, NOTEBOOK_RUNS / "executed" / notebook.name)
            print(f"refreshed {notebook.relative_to(notebook.parents[2])}")
    return 0
