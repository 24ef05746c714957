"""`course workspace`: learner copies that open and run offline where they are, and are never overwritten."""

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbclient import NotebookClient

import course_harness.workspace
from course_harness.cli import main
from course_harness.runner import tiny_parameters
from course_harness.workspace import DEFAULT_WORKSPACE, MANIFEST, TINY_FOLDER
from tests.notebook_files import NOTEBOOKS
from tests.paths import ROOT

CHAT, SFT = "chat_templates_example.ipynb", "sft_finetuning_example.ipynb"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace made by the learner's command; returns its folder and what the command printed."""
    folder = tmp_path_factory.mktemp("learner") / "my workspace"  # a space, as in many home folders
    result = subprocess.run([shutil.which("course"), "workspace", "--dir", str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return folder, result.stdout


def test_workspace_says_how_to_open_and_grade_the_copies(workspace):
    folder, out = workspace
    assert f"  jupyter lab '{folder}'" in out.splitlines()
    assert re.search(rf"^  course grade '{re.escape(str(folder))}/\S+\.ipynb'$", out, re.M), out
    assert all(f"wrote {path.name}" in out for path in NOTEBOOKS)


def test_copies_carry_the_runners_tiny_parameters_and_the_tiny_model_they_point_at(workspace):
    folder, _ = workspace
    tiny = {flavour: folder / TINY_FOLDER / flavour for flavour in ("base", "instruct")}
    assert all((path / "config.json").exists() for path in tiny.values())
    for path in NOTEBOOKS:
        copy = nbformat.read(folder / path.name, as_version=4)
        expected = json.loads(json.dumps(tiny_parameters(path.name, tiny, folder), default=str))
        assert copy.metadata.papermill.parameters == expected
        tags = [cell.metadata.get("tags", []) for cell in copy.cells]
        assert tags.index(["injected-parameters"]) == tags.index(["parameters"]) + 1


def learner_environment(cache):
    """What a kernel started by `jupyter lab` sees: no offline switches, the course installed."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    return environment | {
        "PYTHONPATH": str(ROOT),  # the editable install's job on a learner's machine
        "HF_DATASETS_CACHE": str(cache),
        "OMP_NUM_THREADS": "1",  # two kernels share the cores
        "MPLBACKEND": "Agg",
    }


def shortened(notebook):
    """The learner's own tweak before a first try: a few training steps instead of the full run."""
    for cell in notebook.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = re.sub(r"^max_steps = .*$", "max_steps = 3", cell.source, flags=re.M)
    return notebook


def test_copies_run_unattended_where_they_are(workspace, tmp_path):
    folder, _ = workspace

    def run(name):
        notebook = shortened(nbformat.read(folder / name, as_version=4))
        client = NotebookClient(notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": folder}})
        client.execute(env=learner_environment(tmp_path / name))  # raises CellExecutionError on any error
        return notebook

    with ThreadPoolExecutor(2) as pool:
        executed = dict(zip([SFT, CHAT], pool.map(run, [SFT, CHAT])))
    assert json.loads((folder / "sft-output" / "metrics.json").read_text())["eval_loss_after"] > 0
    assert all(cell.execution_count for cell in executed[CHAT].cells if cell.cell_type == "code" and cell.source)


def test_rerunning_keeps_edited_copies_unless_forced(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(course_harness.workspace, "DEFAULT_WORKSPACE", tmp_path)
    assert main(["workspace"]) == 0  # the default folder
    edited = nbformat.read(tmp_path / CHAT, as_version=4)
    edited.cells.append(nbformat.v4.new_code_cell("my_own_experiment = 1"))
    nbformat.write(edited, tmp_path / CHAT)
    capsys.readouterr()

    assert main(["workspace", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept  {CHAT}: you edited it (--force replaces it with a fresh copy)" in out
    assert f"wrote {SFT}" in out
    assert "my_own_experiment" in (tmp_path / CHAT).read_text()

    assert main(["workspace", "--dir", str(tmp_path), "--force"]) == 0
    assert f"wrote {CHAT}" in capsys.readouterr().out
    assert "my_own_experiment" not in (tmp_path / CHAT).read_text()
    assert set(json.loads((tmp_path / MANIFEST).read_text())) == {path.name for path in NOTEBOOKS}


def test_the_default_workspace_is_git_ignored():
    assert DEFAULT_WORKSPACE.parent == ROOT
    probe = DEFAULT_WORKSPACE.relative_to(ROOT) / CHAT
    assert subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=ROOT).returncode == 0
