"""Run the course notebooks offline on the tiny default (``course run``).

Takes the tiny default (built once, ``course_harness/tiny_cache.py``), points each notebook's
parameters at it and at the dataset fixtures in ``course_harness/fixtures``, executes the notebooks with
papermill, keeps the executed copies in ``OUT/executed/`` and writes ``OUT/executed/summary.json``:
per notebook its status, seconds and whatever metrics the notebook recorded.
"""

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.utils import run_sync
from traitlets.config import Config

from course_harness.paths import BUILD, FIXTURES, NOTEBOOK_DIR, NOTEBOOK_RUNS, ROOT
from course_harness.progress import PROGRESS_ENGINE
from course_harness.tiny_cache import tiny_default


def kernel_config():
    """IPC sockets instead of TCP: the kernel is local, and ipykernel warns about unencrypted TCP.

    Each kernel gets its own short-named folder for its socket files: with jupyter_client's default name
    (``kernel-ipc-N`` in the current folder) two kernels started side by side take the same sockets, and
    a socket's path may not be longer than 107 characters.
    """
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(tempfile.mkdtemp(prefix="kernel-")) / "ipc")}})


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
            "max_steps": 200,  # tests/test_sft_notebook.py gives the figures behind these two
            "learning_rate": 1e-2,
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


def execute(notebook, output, parameters, cwd, progress=None, km=None):
    """Execute one notebook; return its summary entry (status, seconds, error).

    ``progress``, if given, is called with a line as each cell starts; ``km``, a kernel manager,
    runs it in that kernel (started on first use, left running) instead of a kernel of its own.
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
            config=kernel_config() if km is None else None,  # a given kernel has its sockets already
            km=km,
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


def run_on_tiny(notebook, tiny, workdir, output, extra_parameters=None, progress=None, km=None):
    """Execute one notebook on the tiny default, working in ``workdir``; return its summary entry.

    ``notebook`` is a path, or a notebook node with ``notebook_name`` naming the course notebook.
    """
    is_path = isinstance(notebook, Path)
    name = notebook.name if is_path else notebook.metadata.notebook_name
    parameters = tiny_parameters(name, tiny, workdir) | (extra_parameters or {})
    recorded_metrics_file(workdir).unlink(missing_ok=True)  # a failed run must not report an earlier run's metrics
    cwd = notebook.parent if is_path else NOTEBOOK_DIR
    entry = execute(notebook, output, parameters, cwd=cwd, progress=progress, km=km)
    return with_recorded_metrics(entry, workdir)


def run_all(out=NOTEBOOK_RUNS, selected=None, tiny=None, progress=None, notebook_dir=None):
    """Execute the notebooks, write and return the summary.

    ``selected`` names notebooks (file names) to run; ``progress`` receives one line per cell.
    """
    chosen = [nb for nb in notebooks(notebook_dir or NOTEBOOK_DIR) if not selected or nb.name in selected]
    if not chosen:
        return {}  # nothing to run: no tiny default to build
    out = Path(out)
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    os.environ.update(offline_environment(out / "datasets-cache"))  # papermill's kernels inherit it
    tiny = tiny or tiny_default()
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


RESET_CELL = """# course_harness.runner: this kernel ran another copy before: start from an empty namespace
%reset -f
import gc

import matplotlib.pyplot as plt

plt.close("all")
gc.collect()"""


def after_a_reset(notebook_path):
    """The notebook with a first cell that empties the kernel's namespace (the run is not the kernel's first)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RESET_CELL, metadata={"tags": ["injected-reset"]}))
    notebook.metadata.notebook_name = Path(notebook_path).name
    return notebook


def run_in_one_kernel(notebook_name, runs, tiny):
    """Execute one notebook under several parameter sets, one after the other, in a single kernel.

    ``runs`` maps a name to parameters added to the tiny ones; each run works in ``build/<name>/`` and
    gets its own executed copy there. Every run after the first starts with ``RESET_CELL``: its
    namespace is empty, while the imported modules stay loaded, which saves a kernel start and the
    notebook's imports (about 11 s each on the 2-core machine). Returns ``{name: summary entry}``.
    """
    notebook = NOTEBOOK_DIR / notebook_name
    km = AsyncKernelManager(kernel_name="python3", config=kernel_config())
    entries = {}
    try:
        for number, (name, parameters) in enumerate(runs.items()):
            workdir = BUILD / name
            workdir.mkdir(parents=True, exist_ok=True)
            source = notebook if number == 0 else after_a_reset(notebook)
            entries[name] = run_on_tiny(source, tiny, workdir, workdir / notebook_name, parameters, km=km)
    finally:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    return entries


def run_variants(notebook_name, variants, tiny, lanes=2):
    """Execute one notebook under several parameter sets, in ``lanes`` kernels side by side.

    ``variants`` maps a name to parameters added to the tiny ones (see ``run_in_one_kernel``); they are
    dealt to the lanes in turn, and each lane runs its share in one kernel. Kernels get one torch thread
    each, so that two share the 2 cores without fighting over them. Returns ``{name: summary entry}``,
    in the order of ``variants``.
    """
    threads = os.environ.get("OMP_NUM_THREADS")
    os.environ.update(offline_environment(BUILD / "variants-datasets-cache"), OMP_NUM_THREADS="1")
    names = list(variants)
    shares = [{name: variants[name] for name in names[lane::lanes]} for lane in range(lanes)]
    try:
        with ThreadPoolExecutor(lanes) as pool:
            done = {}
            for entries in pool.map(lambda share: run_in_one_kernel(notebook_name, share, tiny), filter(None, shares)):
                done |= entries
    finally:
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = threads
    return {name: done[name] for name in names}


def print_table(summary):
    print(f"{'notebook':<36} {'status':<8} {'seconds':>8}")
    for name, entry in summary.items():
        print(f"{name:<36} {entry['status']:<8} {entry['seconds']:>8.1f}")
        if "error" in entry:
            print(f"    {entry['error']}")
