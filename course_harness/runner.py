"""Run the course notebooks offline on the tiny default (``course run``).

Builds the tiny model (``course_harness/tiny_default.py``), points each notebook's parameters at
it and at the dataset fixtures in ``course_harness/fixtures``, executes the notebooks with
papermill, keeps the executed copies in ``OUT/executed/`` and writes ``OUT/executed/summary.json``:
per notebook its status, seconds and whatever metrics the notebook recorded.
"""

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import papermill
from traitlets.config import Config

from course_harness.paths import BUILD, FIXTURES, NOTEBOOK_DIR, ROOT
from course_harness.progress import PROGRESS_ENGINE

DEFAULT_OUT = BUILD / "notebooks"


def kernel_config(output):
    """IPC sockets instead of TCP: the kernel is local, and ipykernel warns about unencrypted TCP.

    The socket files are named after the executed copy: with jupyter_client's default name
    (``kernel-ipc-N`` in the current folder), two kernels started side by side take the same sockets.
    """
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(output).with_suffix("")) + "-kernel"}})


def notebooks(notebook_dir=NOTEBOOK_DIR):
    return sorted(Path(notebook_dir).glob("*.ipynb"))


def offline_stand_ins(tiny):
    """Hub name → local stand-in. Longer names first, so the Instruct model is not caught by the base name."""
    stand_ins = {
        "HuggingFaceTB/SmolLM2-135M-Instruct": tiny["instruct"],
        "HuggingFaceTB/SmolLM2-135M": tiny["base"],
        "HuggingFaceTB/smoltalk": FIXTURES / "smoltalk",
        "openai/gsm8k": FIXTURES / "gsm8k",
        "bigcode/the-stack-smol": FIXTURES / "the-stack-smol",
    }
    return {name: str(path) for name, path in sorted(stand_ins.items(), key=lambda item: -len(item[0]))}


def tiny_parameters(notebook_name, tiny, workdir):
    """The papermill parameters that put a notebook on the tiny default and the fixtures."""
    local = offline_stand_ins(tiny)
    if notebook_name == "chat_templates_example.ipynb":
        return {
            "base_model_name": local["HuggingFaceTB/SmolLM2-135M"],
            "instruct_model_name": local["HuggingFaceTB/SmolLM2-135M-Instruct"],
            "smoltalk_name": local["HuggingFaceTB/smoltalk"],
            "gsm8k_name": local["openai/gsm8k"],
        }
    if notebook_name == "sft_finetuning_example.ipynb":
        return {
            "model_name": local["HuggingFaceTB/SmolLM2-135M"],
            "dataset_name": local["HuggingFaceTB/smoltalk"],
            "the_stack_name": local["bigcode/the-stack-smol"],
            "output_dir": str(workdir / "sft-output"),
            "max_steps": 600,
            "learning_rate": 2e-3,
            "batch_size": 16,
            "max_length": 128,  # rows for the padding and packing variants; the longest fixture chat is 92 tokens
            "eval_prompts": 40,
        }
    raise KeyError(f"no tiny-default parameters for {notebook_name}: add them to course_harness/runner.py")


#: The "bring your own data" fixtures (``fixtures/make_own_data.py``): the SFT notebook's parameters
#: for each format and split layout they cover.
OWN_DATA_SHAPES = {
    "conversational-validation": {"dataset_name": str(FIXTURES / "support-chats"), "dataset_config": None},
    "chat-prompt-completion-test": {"dataset_name": str(FIXTURES / "capital-quiz"), "dataset_config": None},
    "prompt-completion-train-only": {"dataset_name": str(FIXTURES / "unit-conversions"), "dataset_config": None},
    "language-modeling-named-split": {
        "dataset_name": str(FIXTURES / "weather-reports"),
        "dataset_config": None,
        "text_field": "report",
        "eval_split": "validation",
    },
}


def offline_environment(cache_dir):
    """Environment for notebook kernels: no hub, a fresh datasets cache, this checkout's packages, quiet logs."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    return dict(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_CACHE=str(cache_dir),  # a local folder's cache is not refreshed when its files change
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
        TOKENIZERS_PARALLELISM="false",
        TQDM_DISABLE="1",  # progress bars would flood CI logs
        MPLBACKEND="Agg",
    )


def execute(notebook, output, parameters, cwd, progress=None):
    """Execute one notebook; return its summary entry (status, seconds, error).

    ``progress``, if given, is called with a line as each cell starts.
    """
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            notebook,
            output,
            parameters=parameters,
            cwd=cwd,
            kernel_name="python3",
            engine_name=PROGRESS_ENGINE,
            progress=progress,
            config=kernel_config(output),
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


def recorded_metrics_file(workdir):
    """Where the SFT notebook writes its metrics.json when it runs in ``workdir``."""
    return workdir / "sft-output" / "metrics.json"


def with_recorded_metrics(entry, workdir):
    """Add the metrics a notebook wrote (the SFT notebook's metrics.json) to its summary entry."""
    metrics_file = recorded_metrics_file(workdir)
    if metrics_file.exists():
        entry["metrics"] = json.loads(metrics_file.read_text())
    return entry


def run_on_tiny(notebook, tiny, workdir, output, extra_parameters=None, progress=None):
    """Execute one notebook on the tiny default, working in ``workdir``; return its summary entry."""
    parameters = tiny_parameters(notebook.name, tiny, workdir) | (extra_parameters or {})
    recorded_metrics_file(workdir).unlink(missing_ok=True)  # a failed run must not report an earlier run's metrics
    entry = execute(notebook, output, parameters, cwd=notebook.parent, progress=progress)
    return with_recorded_metrics(entry, workdir)


def run_all(out=DEFAULT_OUT, selected=None, tiny=None, progress=None, notebook_dir=None):
    """Build the tiny default (unless given), execute the notebooks, write and return the summary.

    ``selected`` names notebooks (file names) to run; ``progress`` receives one line per cell.
    """
    chosen = [nb for nb in notebooks(notebook_dir or NOTEBOOK_DIR) if not selected or nb.name in selected]
    if not chosen:
        return {}  # nothing to run: no tiny default to build
    out = Path(out)
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    os.environ.update(offline_environment(out / "datasets-cache"))  # papermill's kernels inherit it
    if tiny is None:
        from course_harness.tiny_default import build_tiny_default  # torch and transformers: only when needed

        tiny = build_tiny_default(out / "tiny")
    summary = {}
    for number, notebook in enumerate(chosen, 1):
        label = f"[{number}/{len(chosen)}] {notebook.name}"
        cell_progress = progress and (lambda line, label=label: progress(f"{label}: {line}"))
        summary[notebook.name] = run_on_tiny(
            notebook, tiny, out / notebook.stem, executed / notebook.name, progress=cell_progress
        )
        if progress:
            entry = summary[notebook.name]
            progress(f"{label}: {entry['status']} in {entry['seconds']:.0f} s")
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
        return run_on_tiny(notebook, tiny, workdir, workdir / notebook_name, variants[name])

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
