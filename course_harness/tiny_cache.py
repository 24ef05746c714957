"""The tiny default, built once and reused by every command that needs it.

``course run``, ``course grade``, ``course workspace`` and ``course lesson`` all start from the build
in ``build/tiny-default``. It is kept with a fingerprint of what it was built from: the builder's
source, the fixture texts its vocabulary is learned from, and the versions of the libraries that
write it. When any of them changes, the next command builds it again.
``tests/test_tiny_default.py`` checks that the kept build is byte-identical to a fresh one.

This module imports neither torch nor transformers: a command that finds a current build starts
without them.
"""

import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from course_harness.paths import BUILD, ROOT, fixture_text_files

SHARED_TINY = BUILD / "tiny-default"
FINGERPRINT_FILE = "built-from.json"
BUILT_FROM = [ROOT / "course_harness" / "tiny_default.py"]
WRITERS = ["torch", "tokenizers", "transformers", "safetensors"]


def fingerprint():
    """What a build depends on: source and fixture hashes, and the writing libraries' versions."""
    digest = hashlib.sha256()
    for path in [*BUILT_FROM, *fixture_text_files()]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"sources": digest.hexdigest(), "versions": {name: metadata.version(name) for name in WRITERS}}


def is_current(folder):
    try:
        return json.loads((Path(folder) / FINGERPRINT_FILE).read_text()) == fingerprint()
    except (OSError, ValueError):  # missing, or left half-written
        return False


def tiny_default(folder=None):
    """``{"base": path, "instruct": path}`` of a current tiny default in ``folder``.

    The shared build is made when missing or out of date. Any other folder that holds no current
    copy is replaced by a copy of the shared build.
    """
    folder = Path(folder or SHARED_TINY).resolve()
    if not is_current(folder):
        if folder == SHARED_TINY.resolve():
            _build_shared()
        else:
            shared = SHARED_TINY.resolve()
            tiny_default(shared)
            _put_in_place(folder, lambda partial: shutil.copytree(shared, partial), fingerprint())
    return {path.name: path for path in sorted(folder.iterdir()) if (path / "config.json").exists()}


def _build_shared():
    BUILD.mkdir(parents=True, exist_ok=True)
    with FileLock(BUILD / "tiny-default.lock"):  # two commands started together build it once
        if is_current(SHARED_TINY):
            return
        from course_harness.tiny_default import build_tiny_default  # torch and transformers: only here

        _put_in_place(SHARED_TINY.resolve(), build_tiny_default, fingerprint())


def _put_in_place(folder, write, stamp):
    """``write(partial)`` into a sibling folder, stamp it, then swap it in: no half-made folder looks current."""
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    (partial / FINGERPRINT_FILE).write_text(json.dumps(stamp, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
