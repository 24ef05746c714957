"""Each notebook's Colab install cell really gives the notebook all it needs: run it as a fresh Colab
runtime would (course_harness/colab.py says what we assume Colab has), then the notebook top to bottom."""

import os
import subprocess

import pytest
from papermill import PapermillExecutionError

from course_harness.colab import (
    COLAB_DIR,
    COLAB_PREINSTALLED,
    colab_environment,
    colab_runtime,
    fresh_venv,
    prepare,
    run_like_colab,
)
from course_harness.runner import tiny_parameters
from tests.notebook_files import NOTEBOOKS, PIN, colab_install_cells

# each notebook runs once, to show that it runs: a few steps are enough (test_sft_notebook.py checks the learning)
QUICK = {"sft_finetuning_example.ipynb": {"max_steps": 4, "batch_size": 4, "eval_prompts": 2}}
SHARED_RUNTIME = COLAB_DIR / "runs" / "both"  # where colab_runs runs both notebooks


def install_cell_pins(path):
    return set(PIN.findall(colab_install_cells(path)[0].source))


# the order the notebooks run in the shared runtime: fewest pins first
INSTALL_ORDER = sorted(NOTEBOOKS, key=lambda path: len(install_cell_pins(path)))


@pytest.fixture(scope="module")
def colab_runs(tiny):
    """Both notebooks, one after the other, in one fresh stand-in runtime: name → None, or the failing cell.

    The chat notebook runs first, in the empty runtime, so its install cell alone must give it all it
    needs. The SFT notebook then finds what that cell installed; its own cell pins a superset
    (``test_one_runtime_proves_what_two_would``), and pip resolves from one wheel per package, so it
    ends with the environment its cell alone would give.
    """
    workdir = SHARED_RUNTIME
    runtime = colab_runtime(workdir)
    failures = {}
    for notebook in INSTALL_ORDER:
        parameters = tiny_parameters(notebook.name, tiny, workdir) | QUICK.get(notebook.name, {})
        try:
            run_like_colab(notebook, parameters, workdir, runtime)
        except PapermillExecutionError as error:
            failures[notebook.name] = f"cell {error.exec_count}: {error.ename}: {error.evalue}"
        else:
            failures[notebook.name] = None
    return failures


def test_one_runtime_proves_what_two_would():
    """Each notebook's install cell pins all that the notebooks before it in the shared runtime pinned."""
    for earlier, later in zip(INSTALL_ORDER, INSTALL_ORDER[1:]):
        assert install_cell_pins(earlier) <= install_cell_pins(later), (earlier.name, later.name)


def test_the_stand_in_starts_with_only_what_colab_preinstalls(tmp_path):
    base, wheels = prepare()
    venv = fresh_venv(tmp_path / "venv", base)
    env = os.environ | colab_environment(tmp_path, tmp_path, wheels)
    probe = "import google.colab, sys, importlib.util as u; print(sorted(n for n in sys.argv[1:] if u.find_spec(n)))"
    names = [*COLAB_PREINSTALLED, "transformers", "datasets", "trl", "peft", "accelerate", "course_helpers"]
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *names],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert found.strip() == str(sorted(COLAB_PREINSTALLED))


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_install_cell_gives_the_notebook_all_it_needs(colab_runs, name):
    assert colab_runs[name] is None, f"on the Colab path, {name} failed in {colab_runs[name]}"


def test_the_stand_in_pip_compiles_only_what_is_imported(colab_runs):
    """pip compiles no bytecode in the stand-in (``PIP_NO_COMPILE``, colab.py): the chat notebook's install cell
    took 52 s when it did, 21 s now. Transformers' files the notebooks never import stay uncompiled."""
    site = next((SHARED_RUNTIME / "venv").glob("lib/python*/site-packages"))
    sources, compiled = [len(list((site / "transformers").rglob(pattern))) for pattern in ("*.py", "*.pyc")]
    assert compiled < sources / 2, f"pip compiled {compiled} of transformers' {sources} files: see PIP_NO_COMPILE"
