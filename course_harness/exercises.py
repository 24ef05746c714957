"""Where a notebook's exercises are, and what their checkers said.

An exercise is a markdown section whose heading holds 🐢, 🐕 or 🦁: it runs from that heading
to the next heading of the same or a higher level, and owns the code cells in between. Its
checkers are the cells that call a ``check_…`` function; after execution, each one's output is
a ``Verdict`` (``course_helpers/verdict.py``), shown as ``✅ message`` or ``❌ message``. An
exercise without a checker call is open-ended and not graded.
"""

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

MARKERS = ("🐢", "🐕", "🦁")
VERDICT_SIGNS = {"✅": True, "❌": False}
CHECKER_CALL = re.compile(r"\bcheck_\w*\s*\(")


@dataclass
class Exercise:
    marker: str
    title: str
    level: int  # the heading's level: 3 for ###
    cells: list = field(default_factory=list)  # indices of the section's code cells

    @property
    def label(self):
        return f"{self.marker} {self.title}"


def headings(markdown):
    """(level, text) of every heading in a markdown text; code blocks are not headings."""
    tokens = MarkdownIt().parse(markdown)
    return [
        (int(token.tag[1:]), tokens[i + 1].content.strip())
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]


def exercise_heading(level, text):
    marker = next((m for m in MARKERS if m in text), None)
    if marker is None:
        return None
    return Exercise(marker, " ".join(text.replace(marker, " ").split()), level)


def exercises(notebook):
    """The notebook's exercises in order, each with the indices of its code cells."""
    found, current = [], None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            for level, text in headings(cell.source):
                if current and level <= current.level:
                    current = None
                heading = exercise_heading(level, text)
                if heading:
                    found.append(heading)
                    current = heading
        elif cell.cell_type == "code" and current:
            current.cells.append(index)
    return found


def is_graded(exercise, notebook):
    return any(CHECKER_CALL.search(notebook.cells[i].source) for i in exercise.cells)


def one_line(text):
    return " ".join(text.split())


def verdicts(cell):
    """(passed, message) for every verdict a code cell shows among its outputs."""
    found = []
    for output in cell.get("outputs", []):
        if output.get("output_type") not in ("execute_result", "display_data"):
            continue
        text = output.get("data", {}).get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        sign = text.strip()[:1]
        if sign in VERDICT_SIGNS:
            found.append((VERDICT_SIGNS[sign], one_line(text.strip()[1:])))
    return found
