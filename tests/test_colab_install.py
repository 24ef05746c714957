"""Each notebook's Colab install cell really gives the notebook all it needs: run it as a fresh Colab
runtime would (course_harness/colab.py says what we assume Colab has), then the notebook top to bottom."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from papermill import PapermillExecutionError

from course_harness.colab import COLAB_DIR, COLAB_PREINSTALLED, colab_environment, fresh_venv, prepare, run_like_colab
from course_harness.runner import tiny_parameters
from tests.notebook_files import NOTEBOOKS

# each notebook runs once, to show that it runs: a few steps are enough (test_sft_notebook.py checks the learning)
QUICK = {"sft_finetuning_example.ipynb": {"max_steps": 4, "batch_size": 4, "eval_prompts": 2}}


def run(notebook, tiny):
    """None if the notebook ran on the Colab path, else which cell failed and why."""
    workdir = COLAB_DIR / "runs" / notebook.stem
    parameters = tiny_parameters(notebook.name, tiny, workdir) | QUICK.get(notebook.name, {})
    try:
        run_like_colab(notebook, parameters, workdir)
    except PapermillExecutionError as error:
        return f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    return None


@pytest.fixture(scope="module")
def colab_runs(tiny):
    """Both notebooks, each in its own fresh stand-in runtime, two at a time (pip and imports wait on the disk)."""
    prepare()
    with ThreadPoolExecutor(2) as pool:
        return dict(zip([path.name for path in NOTEBOOKS], pool.map(lambda nb: run(nb, tiny), NOTEBOOKS)))


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
