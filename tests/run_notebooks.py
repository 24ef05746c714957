"""Run every course notebook offline on the tiny default; write summary.json and print a table.

    python -m tests.run_notebooks [--out build/notebooks] [NOTEBOOK ...]

Builds the tiny model (``tests/tiny_default.py``), points each notebook's parameters at it and
at the dataset fixtures in ``tests/fixtures``, executes the notebooks with papermill, keeps the
executed copies in ``OUT/executed/`` and writes ``OUT/executed/summary.json``: per notebook its
status, seconds and whatever metrics the notebook recorded. Exits non-zero if one failed.
"""

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import papermill

from tests.tiny_default import build_tiny_default

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "1_instruction_tuning" / "notebooks"
FIXTURES = ROOT / "tests" / "fixtures"
DEFAULT_OUT = ROOT / "build" / "notebooks"


def notebooks():
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def tiny_parameters(notebook_name, tiny, workdir):
    """The papermill parameters that put a notebook on the tiny default and the fixtures."""
    datasets = {
        "smoltalk_name": str(FIXTURES / "smoltalk"),
        "gsm8k_name": str(FIXTURES / "gsm8k"),
        "the_stack_name": str(FIXTURES / "the-stack-smol"),
    }
    if notebook_name == "chat_templates_example.ipynb":
        return {
            "base_model_name": str(tiny["base"]),
            "instruct_model_name": str(tiny["instruct"]),
            "smoltalk_name": datasets["smoltalk_name"],
            "gsm8k_name": datasets["gsm8k_name"],
        }
    if notebook_name == "sft_finetuning_example.ipynb":
        return {
            "model_name": str(tiny["base"]),
            "dataset_name": datasets["smoltalk_name"],
            "the_stack_name": datasets["the_stack_name"],
            "output_dir": str(workdir / "sft-output"),
            "max_steps": 600,
            "learning_rate": 2e-3,
            "batch_size": 16,
            "max_length": 64,
            "eval_prompts": 40,
        }
    raise KeyError(f"no tiny-default parameters for {notebook_name}: add them to tests/run_notebooks.py")


def offline_environment(cache_dir):
    """Environment for notebook kernels: no hub, a fresh datasets cache, quiet logs."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    return dict(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_CACHE=str(cache_dir),  # a local folder's cache is not refreshed when its files change
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
        TOKENIZERS_PARALLELISM="false",
        TQDM_DISABLE="1",  # progress bars would flood CI logs
        MPLBACKEND="Agg",
    )


def execute(notebook, output, parameters, cwd):
    """Execute one notebook; return its summary entry (status, seconds, error)."""
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            notebook,
            output,
            parameters=parameters,
            cwd=cwd,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    except papermill.PapermillExecutionError as error:
        status, message = "failed", f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    else:
        status, message = "passed", None
    entry = {"status": status, "seconds": round(time.perf_counter() - start, 1)}
    if message:
        entry["error"] = message
    return entry


def with_recorded_metrics(entry, workdir):
    """Add the metrics a notebook wrote (the SFT notebook's metrics.json) to its summary entry."""
    metrics_file = workdir / "sft-output" / "metrics.json"
    if metrics_file.exists():
        entry["metrics"] = json.loads(metrics_file.read_text())
    return entry


def run_all(out=DEFAULT_OUT, selected=None, extra_parameters=None, tiny=None):
    """Build the tiny default (unless given), execute the notebooks, write and return the summary."""
    out = Path(out)
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    os.environ.update(offline_environment(out / "datasets-cache"))  # papermill's kernels inherit it
    tiny = tiny or build_tiny_default(out / "tiny")
    summary = {}
    for notebook in notebooks():
        if selected and notebook.name not in selected:
            continue
        workdir = out / notebook.stem
        parameters = tiny_parameters(notebook.name, tiny, workdir) | (extra_parameters or {})
        entry = execute(notebook, executed / notebook.name, parameters, cwd=notebook.parent)
        summary[notebook.name] = with_recorded_metrics(entry, workdir)
    (executed / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_variants(notebook_name, variants, tiny, workers=2):
    """Execute one notebook under several parameter sets, ``workers`` at a time.

    ``variants`` maps a name to parameters added to the tiny ones; each variant works in
    ``build/<name>/``. Kernels get one torch thread each, so that two share the 2 cores without
    fighting over them. Returns ``{name: summary entry}``.
    """
    os.environ.update(offline_environment(DEFAULT_OUT.parent / "variants-datasets-cache"), OMP_NUM_THREADS="1")
    notebook = NOTEBOOK_DIR / notebook_name

    def run(name):
        workdir = DEFAULT_OUT.parent / name
        workdir.mkdir(parents=True, exist_ok=True)
        parameters = tiny_parameters(notebook_name, tiny, workdir) | variants[name]
        entry = execute(notebook, workdir / notebook_name, parameters, cwd=notebook.parent)
        return with_recorded_metrics(entry, workdir)

    try:
        with ThreadPoolExecutor(workers) as pool:
            return dict(zip(variants, pool.map(run, variants)))
    finally:
        os.environ.pop("OMP_NUM_THREADS")


def print_table(summary):
    print(f"{'notebook':<36} {'status':<8} {'seconds':>8}")
    for name, entry in summary.items():
        print(f"{name:<36} {entry['status']:<8} {entry['seconds']:>8.1f}")
        if "error" in entry:
            print(f"    {entry['error']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    summary = run_all(args.out, set(args.notebooks))
    print_table(summary)
    print(f"executed copies and summary.json in {args.out / 'executed'}")
    return 0 if summary and all(e["status"] == "passed" for e in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
