"""Reading committed notebooks and the pins they install, for the tests."""

import re

import nbformat

from tests.paths import ROOT

NOTEBOOKS = sorted((ROOT / "1_instruction_tuning" / "notebooks").glob("*.ipynb"))
PIN = re.compile(r"([A-Za-z0-9_.\-]+)==([0-9][^\s\"']*)")


def read(path):
    return nbformat.read(path, as_version=4)


def code_cells(path):
    return [cell for cell in read(path).cells if cell.cell_type == "code"]


def requirement_pins():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return dict(PIN.match(line).groups() for line in lines if PIN.match(line))


def colab_install_cells(path):
    return [cell for cell in code_cells(path) if "google.colab" in cell.source and "pip install" in cell.source]
