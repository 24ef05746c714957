"""Refresh the outputs stored in the committed notebooks (``course refresh [NOTEBOOK ...]``).

Executes the notebooks on the tiny default (as ``course run`` does), then writes back
into each committed notebook the outputs of its checked cells (``# NBVAL_CHECK_OUTPUT``) and
clears every other output, so that a committed notebook only shows outputs the code really
produced and that do not depend on model weights. Review the diff before committing.
"""

import nbformat

from course_harness.runner import DEFAULT_OUT, notebooks, print_table, run_all

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
VOLATILE_METADATA = ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime")


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
            cell.outputs = executed[cell.id].outputs
            cell.execution_count = executed[cell.id].execution_count
        else:
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(committed)
    nbformat.write(committed, committed_path)


def refresh(selected=None):
    """Run the selected notebooks (all by default) and store their checked outputs; 0 when done."""
    summary = run_all(DEFAULT_OUT, selected, progress=lambda line: print(line, flush=True))
    print_table(summary)
    if any(entry["status"] != "passed" for entry in summary.values()):
        print("not refreshing: a notebook failed")
        return 1
    for notebook in notebooks():
        if notebook.name in summary:
            store_checked_outputs(notebook, DEFAULT_OUT / "executed" / notebook.name)
            print(f"refreshed {notebook.relative_to(notebook.parents[2])}")
    return 0
