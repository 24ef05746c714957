"""The tiny default, built once and reused by every command that needs it.

``course run``, ``course grade``, ``course workspace`` and ``course lesson`` all start from the build
in ``build/tiny-default``. It is kept with a fingerprint of what it was built from: the builder's
source, the SmolLM2 facts sheet, the fixture texts the vocabulary is learned from, and the versions
of the libraries that write it. When any of them changes, the next command builds it again.
``tests/test_tiny_default.py`` checks that the kept build is byte-identical to a fresh one.

This module imports neither torch nor transformers: a command that finds a current build starts
without them.
"""

import hashlib
import json
import shutil
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from course_harness.paths import BUILD, FIXTURES, ROOT

SHARED_TINY = BUILD / "tiny-default"
FINGERPRINT_FILE = "built-from.json"
BUILT_FROM = [ROOT / "course_harness" / "tiny_default.py", ROOT / "course_harness" / "smollm2_facts.json"]
WRITERS = ["torch", "tokenizers", "transformers", "safetensors"]


def fingerprint():
    """What a build depends on: source and fixture hashes, and the writing libraries' versions."""
    sources = [*BUILT_FROM, *sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".json", ".jsonl", ".md"})]
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"sources": digest.hexdigest(), "versions": {name: metadata.version(name) for name in WRITERS}}


def is_current(folder):
    stamp = Path(folder) / FINGERPRINT_FILE
    return stamp.exists() and json.loads(stamp.read_text()) == fingerprint()


def tiny_default(folder=None):
    """``{"base": path, "instruct": path}`` of a current tiny default in ``folder``.

    The shared build is made when missing or out of date; any other folder gets a copy of it.
    """
    folder = Path(folder or SHARED_TINY)
    if not is_current(folder):
        if folder == SHARED_TINY:
            _build_shared()
        else:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(tiny_default()["base"].parent, folder)
    return {path.name: path for path in sorted(folder.iterdir()) if path.is_dir()}


def _build_shared():
    BUILD.mkdir(parents=True, exist_ok=True)
    with FileLock(BUILD / "tiny-default.lock"):  # two commands started together build it once
        if is_current(SHARED_TINY):
            return
        from course_harness.tiny_default import build_tiny_default  # torch and transformers: only here

        shutil.rmtree(SHARED_TINY, ignore_errors=True)
        build_tiny_default(SHARED_TINY)
        (SHARED_TINY / FINGERPRINT_FILE).write_text(json.dumps(fingerprint(), indent=1) + "\n")
