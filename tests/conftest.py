import json
import os
import shutil
import subprocess
import uuid

import pytest

# One torch thread per process: pytest-xdist runs a worker per CPU, and notebook kernels and training
# subprocesses run beside them. More threads than cores make OpenMP's threads spin and wait for each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Nothing here imports torch, transformers or papermill: pytest-xdist's controller loads this file too,
# and runs no test. Each worker imports them with its first test module.
from course_harness.paths import NOTEBOOK_RUNS  # noqa: E402
from course_harness.tiny_cache import tiny_default  # noqa: E402
from tests.once import once_per_test_run  # noqa: E402

# pytest-xdist hands each module to one worker (--dist loadscope), in collection order: the modules that run
# notebooks or train go first, the longest first, so that they start at once and the short ones fill the gaps.
# Within a module, the tests that need the SFT notebook's extra runs go first: they take longest. The second
# worker starts with `course run` (test_notebooks.py), which the first needs once those runs are done.
LONGEST_FIRST = [
    "test_sft_notebook.py",
    "test_notebooks.py",
    "test_colab_install.py",
    "test_grader.py",
    "test_recipe.py",
    "test_distributed_recipe.py",
    "test_lora_tied_embeddings.py",
    "test_workspace.py",
    "test_benchmark.py",
    "test_sft_own_data.py",  # after test_sft_notebook.py, which runs the notebook's extra runs for both
    "test_cli.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: number for number, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), "sft_runs" not in item.fixturenames))


@pytest.fixture(scope="session")
def run_uid(request):
    """One id for the whole test run, the same in every pytest-xdist worker (one is made without xdist)."""
    worker = getattr(request.config, "workerinput", None)
    return worker["testrunuid"] if worker else uuid.uuid4().hex


@pytest.fixture(scope="session")
def tiny():
    """The tiny default (base and instruct): the shared build, made when missing or out of date."""
    return tiny_default()


@pytest.fixture(scope="session")
def course_run(tiny, run_uid):
    """``course run``, the entry point a learner uses, over every notebook; returns the finished process."""
    command = shutil.which("course")
    assert command, "the `course` command is missing: pip install -r requirements.txt -e ."

    def run():
        result = subprocess.run([command, "run"], capture_output=True, text=True)  # as the Quick start runs it
        return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    return subprocess.CompletedProcess([command, "run"], **once_per_test_run("course-run", run_uid, run))


@pytest.fixture(scope="session")
def sft_runs(tiny, run_uid):
    """Every extra run of the SFT notebook (tests/sft_runs.py): name → summary entry."""
    from tests.sft_runs import run_every_sft_variant

    return once_per_test_run("sft-runs", run_uid, lambda: run_every_sft_variant(tiny))


@pytest.fixture(scope="session")
def executed_notebooks(course_run):
    """Every notebook executed once on the tiny default (by ``course run``); returns summary.json's content."""
    return json.loads((NOTEBOOK_RUNS / "executed" / "summary.json").read_text())


@pytest.fixture(scope="session")
def repo_slug():
    """The GitHub owner/name that Colab badges and install cells must use (pyproject.toml)."""
    from course_harness.colab import repo_slug

    return repo_slug()


def pytest_terminal_summary(terminalreporter):
    """Print how far each translation is behind the English, on every run."""
    from course_harness.translations import report

    terminalreporter.section("translation status (course translations --diff for details)")
    terminalreporter.write_line(report())
