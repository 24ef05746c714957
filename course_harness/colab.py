"""The Colab path, taken offline: a notebook's install cell runs in a fresh environment, then the notebook runs.

**What we assume a fresh Colab runtime has** (checked on ``COLAB_CHECKED_ON``; Colab itself cannot be
reached from CI, so this is the one place that says it): Colab's image ships PyTorch, matplotlib and
the IPython kernel, and the notebooks use them without installing them. It also ships many other
packages (among them transformers, accelerate and peft, at versions of its own, but not trl); the
notebooks must not count on those: whatever else a notebook imports, its install cell installs, at the
versions of requirements.txt. So the stand-in environment holds only ``COLAB_PREINSTALLED`` (CPU
torch), which is stricter than Colab on purpose: a notebook that passes here has nothing missing there.

How a run works (``colab_runtime``, ``run_like_colab``):

* a base virtual environment with only ``COLAB_PREINSTALLED`` (and what they need) is built once in
  ``build/colab/base``, linked to this environment's copies of those packages;
* each run gets a fresh, empty virtual environment layered over it (a ``.pth`` file), with an
  importable ``google.colab`` stub imported at start-up, as Colab's kernel does, so that the install
  cell's ``if "google.colab" in sys.modules`` is true;
* ``pip`` installs from ``build/colab/wheels``, filled once with ``pip download`` from the package
  registry (only the pinned requirements and their dependencies), so a run needs no network;
* the install cell's ``git+https://github.com/<slug>`` is redirected by git's ``insteadOf`` to a git
  snapshot of this working tree: what gets installed is the checkout under test, not GitHub's copy;
* papermill runs the notebook top to bottom in that environment, on the tiny twin, offline.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import papermill
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from course_harness.paths import BUILD, NOTEBOOK_DIR, ROOT

COLAB_CHECKED_ON = "2026-12-01"
COLAB_PREINSTALLED = ("torch", "matplotlib", "ipykernel")

COLAB_DIR = BUILD / "colab"
WHEELS = COLAB_DIR / "wheels"
BASE_VENV = COLAB_DIR / "base"
JUPYTER_DIR = COLAB_DIR / "jupyter"
BUILD_BACKEND = "setuptools>=68"  # course-helpers' build backend (pyproject.toml)
PIN = re.compile(r"([A-Za-z0-9_.\-]+)==([0-9][^\s\"']*)")
STUB = {
    "google/colab/__init__.py": '"""Stand-in for Colab\'s google.colab package (course_harness/colab.py)."""\n',
    "google/colab/userdata.py": (
        "class SecretNotFoundError(Exception):\n    pass\n\n\ndef get(key):\n    raise SecretNotFoundError(key)\n"
    ),
}


def repo_slug():
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/")


def _pip(python, *args, env=None):
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], check=True, env=env)


def _site_packages(venv):
    return next(Path(venv).glob("lib/python*/site-packages"))


def installed_closure(names):
    """The distributions ``names`` and everything they need, as installed here: name → distribution."""
    wanted, found = list(names), {}
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in found:
            continue
        found[name] = metadata.distribution(name)
        for requirement in map(Requirement, found[name].requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return found


def preinstalled_distributions():
    """``COLAB_PREINSTALLED``, pip, and everything they need, as installed here: name → distribution."""
    return installed_closure([*COLAB_PREINSTALLED, "pip"])


def ensure_base_venv():
    """The environment every run starts from: Python plus ``COLAB_PREINSTALLED``, built once.

    Its site-packages links to this environment's copies of those distributions (the pinned versions)
    and of what they need: building it takes a second, where installing torch again took minutes.
    """
    distributions = preinstalled_distributions()
    wanted = sorted(f"{name}=={dist.version}" for name, dist in distributions.items())
    marker = BASE_VENV / "preinstalled.json"
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return BASE_VENV
    shutil.rmtree(BASE_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(BASE_VENV)], check=True)
    site = _site_packages(BASE_VENV)
    for dist in distributions.values():
        for top in {Path(file).parts[0] for file in dist.files} - {"..", "__pycache__"}:
            source, link = Path(dist.locate_file(top)), site / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    marker.write_text(json.dumps(wanted))
    return BASE_VENV


def install_cell_requirements():
    """What the notebooks' Colab install cells pin (the git+ requirement aside), with their build backend."""
    pinned = set()
    for notebook in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code" and "google.colab" in cell.source and "pip install" in cell.source:
                pinned |= {f"{name}=={version}" for name, version in PIN.findall(cell.source)}
    return [*sorted(pinned), BUILD_BACKEND]


def ensure_wheels(base):
    """The install cells' requirements and what they need that the base lacks, as wheels, downloaded once.

    The versions are those installed here (requirements.txt's pins, and what pip chose for their
    dependencies); the install cell's own pip then resolves from these wheels, offline.
    """
    wanted = install_cell_requirements()
    # what the base holds decides what is left to download
    stamp = {"requirements": wanted, "base": json.loads((base / "preinstalled.json").read_text())}
    marker = WHEELS / "downloaded.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return WHEELS
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    pinned = [Requirement(requirement).name for requirement in wanted if "==" in requirement]
    needed = installed_closure(pinned).keys() - preinstalled_distributions().keys()
    resolved = sorted(f"{name}=={metadata.version(name)}" for name in needed)
    # pip builds course-helpers in an isolated environment, which does not see the base's setuptools
    _pip(sys.executable, "download", "-q", "--no-deps", "--dest", str(WHEELS), *resolved, BUILD_BACKEND)
    marker.write_text(json.dumps(stamp))
    return WHEELS


def fresh_venv(path, base):
    """An empty virtual environment that sees ``base``'s packages and has ``google.colab`` imported."""
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = _site_packages(path)
    stub = Path(path) / "colab-stub"
    for name, text in STUB.items():
        (stub / name).parent.mkdir(parents=True, exist_ok=True)
        (stub / name).write_text(text)
    (site / "zz_colab_base.pth").write_text(f"{_site_packages(base)}\n{stub}\nimport google.colab\n")
    return Path(path)


def snapshot_checkout(path):
    """A git repository holding this working tree as it is (tracked and new files, not ignored ones)."""
    shutil.rmtree(path, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    git = ["git", "-c", "user.name=course", "-c", "user.email=course@localhost", "-C", str(path)]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "working tree under test"], check=True)
    return Path(path)


def colab_environment(workdir, checkout, wheels):
    """What the kernel's environment changes: no checkout on sys.path, pip offline, GitHub → the snapshot."""
    return {
        "PYTHONPATH": "",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CONFIG_FILE": os.devnull,
        # pip compiles no bytecode: the chat notebook's install cell took 52 s with it, 21 s without. pip reads
        # this variable as its `compile` setting, so "0" turns compiling off ("1" turns it on)
        "PIP_NO_COMPILE": "0",
        "PYTHONDONTWRITEBYTECODE": "",  # as on Colab, a kernel keeps the bytecode of what it imports for the next
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{checkout.as_uri()}.insteadOf",
        "GIT_CONFIG_VALUE_0": f"https://github.com/{repo_slug()}",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(workdir / "hf-home"),
        "HF_DATASETS_CACHE": str(workdir / "datasets-cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "Agg",
    }


def kernel_spec(name, venv, env):
    """A Jupyter kernel that runs in ``venv`` with ``env``; papermill finds it in ``JUPYTER_DIR``."""
    spec = JUPYTER_DIR / "kernels" / name / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(Path(venv) / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": name, "language": "python", "env": env}, indent=1))
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if str(JUPYTER_DIR) not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(JUPYTER_DIR), *paths]))
    return name


def prepare():
    """Build (once) what every run starts from: the base environment and the wheels; return both."""
    base = ensure_base_venv()
    return base, ensure_wheels(base)


def colab_runtime(workdir):
    """A fresh stand-in Colab runtime in ``workdir``: its own empty environment over the base, and a kernel for it."""
    workdir = Path(workdir)
    base, wheels = prepare()
    venv = fresh_venv(workdir / "venv", base)
    env = colab_environment(workdir, snapshot_checkout(workdir / "checkout"), wheels)
    return kernel_spec(f"colab-{workdir.name}", venv, env)


def run_like_colab(notebook, parameters, workdir, runtime=None):
    """Run ``notebook`` as a Colab runtime would, its install cell first; return the executed copy's path.

    ``runtime`` (``colab_runtime``) is a fresh one unless given: a notebook run in a runtime where another
    ran before finds what that one installed. Raises papermill's ``PapermillExecutionError`` naming the
    cell that failed.
    """
    runtime = runtime or colab_runtime(workdir)
    output = Path(workdir) / Path(notebook).name
    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name=runtime, cwd=str(Path(notebook).parent)
    )
    return output
