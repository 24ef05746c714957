"""Where things are (from the harness), and loading a Python file that is not a package module."""

import importlib.util
from pathlib import Path

from course_harness.paths import FIXTURES, ROOT

__all__ = ["FIXTURES", "ROOT", "load_module"]


def load_module(path):
    """Import a script or solution file by path (solutions, tools and the benchmark script are not package modules)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
