"""The learner's progress: every grade's scorecard, kept in the workspace (``course progress``).

``progress.jsonl`` holds one JSON record per ``course grade`` run (``Scorecard.record()``). The
table lists every exercise of the module, from the committed notebooks, with its latest result.
"""

import json
from pathlib import Path

import nbformat

from course_harness.exercises import exercises, is_graded
from course_harness.grader import SIGNS
from course_harness.runner import notebooks

PROGRESS_FILE = "progress.jsonl"
OPEN = f"{SIGNS['open']} open-ended, no checker"


def append_record(scorecard, workspace):
    """Add the scorecard to the workspace's progress file; return the file's path."""
    path = Path(workspace) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as progress:
        progress.write(json.dumps(scorecard.record(), ensure_ascii=False) + "\n")
    return path


def read_records(workspace):
    path = Path(workspace) / PROGRESS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def module_exercises():
    """(notebook name, marker, title, graded) for every exercise of the committed notebooks, in order."""
    rows = []
    for path in notebooks():
        notebook = nbformat.read(path, as_version=4)
        rows += [(path.name, e.marker, e.title, is_graded(e, notebook)) for e in exercises(notebook)]
    return rows


def latest_results(records):
    """(notebook, marker, title) → (latest status, number of grades, first time it passed)."""
    latest = {}
    for record in records:
        for exercise in record["exercises"]:
            key = (record["notebook"], exercise["marker"], exercise["title"])
            _, runs, first_passed = latest.get(key, (None, 0, None))
            if exercise["status"] == "passed" and first_passed is None:
                first_passed = record["graded_at"]
            latest[key] = (exercise["status"], runs + 1, first_passed)
    return latest


def status_text(status, runs, first_passed):
    if status is None:
        return "· not graded yet"
    text = f"{SIGNS[status]} {status}, {runs} grade{'s' * (runs != 1)}"
    return text + (f", first passed {first_passed[:16].replace('T', ' ')}" if first_passed else "")


def progress_table(workspace):
    """The module's exercises with the learner's latest results, and a closing count."""
    records = read_records(workspace)
    latest = latest_results(records)
    rows = module_exercises()
    known = {row[:3] for row in rows}
    rows += [(*key, True) for key, (status, *_) in latest.items() if key not in known and status != "open"]
    lines = [f"{Path(workspace) / PROGRESS_FILE}: {len(records)} graded run{'s' * (len(records) != 1)}"]
    for notebook in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == notebook]
        width = max(len(title) for _, _, title, _ in mine)
        lines.append(notebook)
        for _, marker, title, graded in mine:
            state = status_text(*latest.get((notebook, marker, title), (None, 0, None)))
            lines.append(f"  {marker} {title:<{width}}  {state if graded else OPEN}")
    graded = [row[:3] for row in rows if row[3]]
    passed = sum(latest.get(key, (None,))[0] == "passed" for key in graded)
    lines.append(f"{passed} of {len(graded)} graded exercises passed")
    return "\n".join(lines)
