"""Bump pinned versions in one step: requirements.txt and every notebook's Colab install cell.

    python tools/bump_pins.py trl==1.17.0 transformers==5.24.0

Then run the tests (python -m pytest): they check that the two places agree and that every
notebook, lesson and solution still runs with the new versions.
"""

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "1_instruction_tuning" / "notebooks").glob("*.ipynb"))


def bump(text, name, version):
    return re.sub(rf"(?<![\w-]){re.escape(name)}==[^\s\"']+", f"{name}=={version}", text)


def main(pins):
    wanted = dict(pin.split("==", 1) for pin in pins)
    requirements = ROOT / "requirements.txt"
    text = requirements.read_text()
    for name in wanted:
        if not re.search(rf"^{re.escape(name)}==", text, re.M):
            sys.exit(f"{name} is not pinned in requirements.txt")
    for name, version in wanted.items():
        text = bump(text, name, version)
    requirements.write_text(text)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code" and "google.colab" in cell.source:
                for name, version in wanted.items():
                    cell.source = bump(cell.source, name, version)
        nbformat.write(notebook, path)
    print(f"bumped {', '.join(pins)} in requirements.txt and {len(NOTEBOOKS)} notebooks")


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit(__doc__))
