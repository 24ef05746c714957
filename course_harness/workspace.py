"""The learner's offline workspace (``course workspace``).

Writes a copy of every course notebook into a git-ignored folder, parameterised like
``course run`` (the runner's tiny parameters), with a copy of the tiny default inside the folder, so
that ``jupyter lab FOLDER`` opens notebooks that run offline on a CPU. ``workspace.json`` keeps a
fingerprint of each copy as written: a copy whose content no longer matches was edited by the
learner and is kept, unless ``force``.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from course_harness.paths import ROOT
from course_harness.runner import notebooks, tiny_parameters
from course_harness.tiny_cache import tiny_default

DEFAULT_WORKSPACE = ROOT / "workspace"
MANIFEST = "workspace.json"
TINY_FOLDER = "tiny-default"
PARAMETERS_COMMENT = "Offline: the tiny default and the course's small datasets (written by `course workspace`)"


@dataclass
class WorkspaceReport:
    folder: Path
    written: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # edited by the learner, left as they are


def fingerprint(text):
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(folder):
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def learner_copy(notebook, tiny, folder):
    """The committed notebook, parameterised for the tiny default in ``folder``, as text."""
    parameters = tiny_parameters(notebook.name, tiny, folder)
    copy = parameterize_notebook(load_notebook_node(str(notebook)), parameters, comment=PARAMETERS_COMMENT)
    return nbformat.writes(copy)


def is_edited(path, manifest):
    """True when the learner changed the copy (or it is not one we wrote)."""
    return path.exists() and fingerprint(path.read_text(encoding="utf-8")) != manifest.get(path.name)


def create_workspace(folder=DEFAULT_WORKSPACE, force=False):
    """Write the learner copies and the tiny default into ``folder``; edited copies stay unless ``force``."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tiny = tiny_default(folder / TINY_FOLDER)
    manifest = read_manifest(folder)
    report = WorkspaceReport(folder)
    for notebook in notebooks():
        target = folder / notebook.name
        if is_edited(target, manifest) and not force:
            report.kept.append(notebook.name)
            continue
        text = learner_copy(notebook, tiny, folder)
        target.write_text(text, encoding="utf-8")
        manifest[notebook.name] = fingerprint(text)
        report.written.append(notebook.name)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return report


def workspace_of(notebook_path):
    """The workspace a notebook belongs to: its own folder if that is a workspace, else the default."""
    folder = Path(notebook_path).resolve().parent
    return folder if (folder / MANIFEST).exists() else DEFAULT_WORKSPACE
