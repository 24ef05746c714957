"""Grade a learner's notebook offline (``course grade NOTEBOOK``).

The notebook is read, never written: a copy gets the runner's tiny-default parameters (with
only a few training steps: a grade checks the exercises, not what the model learned), runs in
a temporary folder under a time limit, and each exercise gets the verdict of its checkers
(``course_harness/exercises.py``). A notebook that stops with an error is graded up to there.
"""

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import papermill
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from traitlets.config import Config

from course_harness.exercises import exercises, is_graded, one_line, verdicts
from course_harness.runner import notebooks, offline_environment, tiny_parameters
from course_harness.tiny_cache import tiny_default

# On top of the runner's tiny parameters; only those the notebook declares are passed.
GRADING_PARAMETERS = {
    "sft_finetuning_example.ipynb": {"max_steps": 2, "eval_prompts": 1, "max_new_tokens": 4, "batch_size": 4},
}
DEFAULT_TIME_LIMIT = 600  # seconds for the whole notebook
SIGNS = {"passed": "✅", "failed": "❌", "not reached": "❌", "open": "➖"}


class GradingError(Exception):
    """The notebook cannot be graded; the message says why and what to do."""


@dataclass
class Result:
    marker: str
    title: str
    status: str  # passed, failed, not reached, open (no checker: not graded)
    message: str

    def line(self):
        return f"{self.marker} {SIGNS[self.status]} {self.title}: {self.message}"


@dataclass
class Scorecard:
    notebook: str  # the course notebook it is a copy of
    file: str
    results: list
    seconds: float
    stopped: str | None = None  # the error the notebook stopped with

    @property
    def passed(self):
        return sum(result.status == "passed" for result in self.results)

    @property
    def failed(self):
        return sum(result.status in ("failed", "not reached") for result in self.results)

    def text(self):
        header = f"{self.file} ({self.notebook}, offline on the tiny default, {self.seconds:.0f} s)"
        lines = [header, *(result.line() for result in self.results), f"{self.passed} passed, {self.failed} failed"]
        return "\n".join(lines)

    def record(self):
        """One line of the learner's progress file."""
        return {
            "graded_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            **{key: value for key, value in asdict(self).items() if key != "results"},
            "passed": self.passed,
            "failed": self.failed,
            "exercises": [asdict(result) for result in self.results],
        }


@dataclass
class Execution:
    notebook: nbformat.NotebookNode
    stopped_at: int | None = None  # index of the cell that failed or ran out of time
    error: str | None = None


def course_notebook_name(path):
    """Which course notebook ``path`` is a copy of: by its name, else by its parameters' names."""
    known = [notebook.name for notebook in notebooks()]
    if path.name in known:
        return path.name
    declared = set(papermill.inspect_notebook(str(path)))
    for name in known:
        if set(tiny_parameters(name, {"base": "", "instruct": ""}, Path())) <= declared:
            return name
    raise GradingError(
        f"{path} is not a copy of a course notebook: expected one of {known}, or a notebook whose "
        f"parameters cell keeps the course's parameter names (found {sorted(declared) or 'none'})"
    )


def read_notebook(path):
    if not path.is_file():
        example = f"workspace/{notebooks()[0].name}"
        raise GradingError(f"no notebook at {path}: give the path of an .ipynb file, e.g. {example}")
    try:
        return load_notebook_node(str(path))  # as papermill wants it: every cell has metadata.tags
    except Exception as error:  # nbformat raises several kinds on a damaged file
        raise GradingError(f"cannot read {path} as a notebook ({error}): is it a saved .ipynb file?") from None


def prepared(path, name, tiny, workdir):
    """The learner's notebook, parameterised for the tiny default, outputs cleared."""
    declared = set(papermill.inspect_notebook(str(path)))
    short = {key: value for key, value in GRADING_PARAMETERS.get(name, {}).items() if key in declared}
    notebook = parameterize_notebook(read_notebook(path), tiny_parameters(name, tiny, workdir) | short)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def execute(notebook, workdir, time_limit, environment, progress=None):
    """Run the cells in ``workdir`` until the end, an error or the time limit; return the Execution."""
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    started, deadline = [], time.monotonic() + time_limit

    def on_cell_execute(cell, cell_index):
        started.append(cell_index)
        if progress:
            elapsed = time_limit - (deadline - time.monotonic())
            progress(f"cell {code_cells.index(cell_index) + 1}/{len(code_cells)}, {elapsed:.0f} s")

    client = NotebookClient(
        notebook,
        kernel_name="python3",
        # IPC sockets at an absolute path: the kernel runs in workdir, this process does not
        config=Config({"KernelManager": {"transport": "ipc", "ip": str(workdir / "kernel")}}),
        timeout_func=lambda cell: max(1, round(deadline - time.monotonic())),
        on_cell_execute=on_cell_execute,
    )
    try:
        client.execute(cwd=str(workdir), env=environment)
    except CellExecutionError as error:
        message = f"{error.ename}: {one_line(error.evalue)}"
    except CellTimeoutError:
        message = f"it ran past the time limit of {time_limit} s"
    except DeadKernelError:
        message = "the kernel died (out of memory?)"
    else:
        return Execution(notebook)
    return Execution(notebook, started[-1] if started else 0, message)


def cell_excerpt(cell):
    lines = [line.strip() for line in cell.source.splitlines()]
    first = next((line for line in lines if line and not line.startswith("# NBVAL")), "")
    return first if len(first) <= 50 else first[:47] + "..."


def result_of(exercise, notebook, execution):
    """The exercise's result: its checkers' verdicts, or where the notebook stopped before them."""
    checks = [verdict for index in exercise.cells for verdict in verdicts(notebook.cells[index])]

    def result(status, message):
        return Result(exercise.marker, exercise.title, status, message)

    if not checks and not is_graded(exercise, notebook):
        return result("open", "open-ended, no checker: not graded")
    stop = execution.stopped_at
    if stop is not None and stop <= exercise.cells[-1]:
        where = f"in the cell starting `{cell_excerpt(notebook.cells[stop])}`"
        if stop >= exercise.cells[0]:
            return result("failed", f"stopped with {execution.error} ({where})")
        return result("not reached", f"not reached: the notebook stopped earlier with {execution.error} ({where})")
    if not checks:
        return result("failed", "no verdict: end the checker cell with its check_...(...) call, as given")
    failing = [(number, message) for number, (ok, message) in enumerate(checks, 1) if not ok]
    if not failing:
        return result("passed", checks[-1][1])
    number, message = failing[0]
    return result("failed", f"check {number}/{len(checks)}: {message}" if len(checks) > 1 else message)


def grade(path, tiny=None, time_limit=DEFAULT_TIME_LIMIT, environment=None, progress=None):
    """Execute the learner's notebook offline and return its Scorecard.

    ``tiny`` is a copy of the shared tiny default (``course_harness/tiny_cache.py``) unless given;
    ``environment`` adds variables for the kernel; ``progress`` gets a line as each cell starts.
    """
    path = Path(path)
    read_notebook(path)  # a clear message before any expensive step
    name = course_notebook_name(path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as folder:
        workdir = Path(folder)
        tiny = tiny or tiny_default(workdir / "tiny")  # a copy: the learner's code cannot touch the shared one
        notebook = prepared(path, name, tiny, workdir)
        kernel_environment = os.environ | offline_environment(workdir / "datasets-cache") | (environment or {})
        execution = execute(notebook, workdir, time_limit, kernel_environment, progress)
    return score(execution, name, path, round(time.perf_counter() - start, 1))


def score(execution, name, path, seconds):
    """The Scorecard of ``execution``, an executed copy of the course notebook ``name`` read from ``path``."""
    results = [result_of(exercise, execution.notebook, execution) for exercise in exercises(execution.notebook)]
    return Scorecard(name, str(path), results, seconds, execution.error)
