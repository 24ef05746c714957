"""`course grade`: one line per exercise with its checker's verdict, an exact closing count, honest exit codes.

The notebooks are graded once per module (two at a time): the reference solutions pasted in, a
partly solved workspace copy, one that raises, one past its time limit; the committed ones are scored
from ``course run``'s executed copies.
"""

import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from papermill.iorw import load_notebook_node

from course_harness.cli import main
from course_harness.exercises import exercises, verdicts
from course_harness.grader import Execution, GradingError, Scorecard, grade, result_of, score
from course_harness.learner_progress import append_record, module_exercises, progress_table, read_records
from course_harness.paths import NOTEBOOK_RUNS
from course_harness.workspace import create_workspace
from tests.exercise_answers import REFERENCE, answered_copy
from tests.paths import ROOT

NOTEBOOK_DIR = ROOT / "1_instruction_tuning" / "notebooks"
CHAT, SFT = "chat_templates_example.ipynb", "sft_finetuning_example.ipynb"
CLOSING = re.compile(r"^(\d+) passed, (\d+) failed$")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # two kernels share the cores


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def learner_files(folder):
    """name → (the learner's notebook, time limit); each one a situation the grader must handle."""
    workspace = create_workspace(folder / "workspace").folder
    answered_copy(NOTEBOOK_DIR / CHAT, folder / "solved" / CHAT, REFERENCE)
    answered_copy(NOTEBOOK_DIR / SFT, folder / "solved" / SFT, REFERENCE)
    answered_copy(workspace / CHAT, workspace / CHAT, {"smoltalk_row_to_chatml": REFERENCE["smoltalk_row_to_chatml"]})
    tried_on_messages = (
        REFERENCE["smoltalk_row_to_chatml"] + '\n\nsmoltalk_row_to_chatml(smoltalk["train"][0]["messages"])'
    )
    # a copy Jupyter named on "Duplicate": the grader recognises it by its parameters
    answered_copy(
        NOTEBOOK_DIR / CHAT,
        folder / "chat_templates_example-Copy1.ipynb",
        {"smoltalk_row_to_chatml": tried_on_messages},
    )
    sleeping = nbformat.read(NOTEBOOK_DIR / CHAT, as_version=4)
    at = next(i for i, cell in enumerate(sleeping.cells) if "parameters" in cell.metadata.get("tags", []))
    sleeping.cells.insert(at + 1, nbformat.v4.new_code_cell("import time\n\ntime.sleep(300)"))
    (folder / "sleeping").mkdir()
    nbformat.write(sleeping, folder / "sleeping" / CHAT)
    return {
        "solved sft": (folder / "solved" / SFT, 600),
        "solved chat": (folder / "solved" / CHAT, 600),
        "partly solved workspace copy": (workspace / CHAT, 600),
        "raises": (folder / "chat_templates_example-Copy1.ipynb", 600),
        "past its time limit": (folder / "sleeping" / CHAT, 5),
    }


def course_grade(notebook, workspace):
    command = [shutil.which("course"), "grade", str(notebook), "--workspace", str(workspace)]
    return subprocess.run(command, capture_output=True, text=True, env=os.environ | ONE_THREAD)


@pytest.fixture(scope="module")
def graded(tiny, tmp_path_factory, executed_notebooks):
    """name → (scorecard text, exit status); the partly solved copy goes through the `course` command.

    The committed notebooks are scored from ``course run``'s executed copies (``score``, the grader's last
    step): the same notebooks run with the same parameters (all the training steps, where a grade runs 2),
    which saves two executions; the grader's own execution is tested on the other five notebooks.
    """
    folder = tmp_path_factory.mktemp("grading")
    files = learner_files(folder)
    before = {name: digest(path) for name, (path, _) in files.items()}

    def run(name):
        path, limit = files[name]
        if name == "partly solved workspace copy":
            result = course_grade(path, folder / "progress")
            return result.stdout.strip(), result.returncode, result.stderr
        scorecard = grade(path, tiny=tiny, time_limit=limit, environment=ONE_THREAD)
        return scorecard.text(), int(scorecard.failed > 0), ""

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(files, pool.map(run, files)))
    for notebook in (CHAT, SFT):
        assert executed_notebooks[notebook]["status"] == "passed", executed_notebooks[notebook]
        executed = Execution(load_notebook_node(str(NOTEBOOK_RUNS / "executed" / notebook)))
        scorecard = score(executed, notebook, NOTEBOOK_DIR / notebook, executed_notebooks[notebook]["seconds"])
        results[f"committed {notebook.split('_')[0]}"] = scorecard.text(), int(scorecard.failed > 0), ""
    results["untouched"] = all(digest(path) == before[name] for name, (path, _) in files.items())
    results["progress"] = folder / "progress"
    return results


def lines_of(graded, name):
    text, status, stderr = graded[name]
    assert CLOSING.match(text.splitlines()[-1]), f"{name}: no closing count\n{text}\n{stderr[-2000:]}"
    return text.splitlines()[1:-1], text.splitlines()[-1], status


def stored_failures(notebook_path):
    """exercise label → the message of its first failing checker, as stored in the committed notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    failures = {}
    for exercise in exercises(notebook):
        checks = [v for i in exercise.cells for v in verdicts(notebook.cells[i])]
        if checks:
            failures[exercise.label] = next(message for ok, message in checks if not ok)
    return failures


@pytest.mark.parametrize("notebook, name", [(CHAT, "committed chat"), (SFT, "committed sft")])
def test_committed_notebooks_score_every_exercise_failed_with_the_checkers_messages(graded, notebook, name):
    lines, closing, status = lines_of(graded, name)
    failures = stored_failures(NOTEBOOK_DIR / notebook)
    assert closing == f"0 passed, {len(failures)} failed" and status == 1
    for label, message in failures.items():
        marker, title = label.split(" ", 1)
        line = next(line for line in lines if line.startswith(f"{marker} ❌ {title}: "))
        assert line.endswith(message), line


@pytest.mark.parametrize("notebook, name", [(CHAT, "solved chat"), (SFT, "solved sft")])
def test_reference_solutions_pasted_in_score_every_exercise_passed(graded, notebook, name):
    lines, closing, status = lines_of(graded, name)
    graded_lines = [line for line in lines if line.split()[1] != "➖"]
    assert closing == f"{len(stored_failures(NOTEBOOK_DIR / notebook))} passed, 0 failed", "\n".join(lines)
    assert status == 0 and all(line.split()[1] == "✅" for line in graded_lines)


def test_a_partly_solved_workspace_copy_scores_what_is_solved(graded):
    lines, closing, status = lines_of(graded, "partly solved workspace copy")
    assert closing == "1 passed, 1 failed" and status == 1
    assert lines[0].startswith("🐢 ✅ smoltalk → ChatML: ") and lines[1].startswith("🐕 ❌ gsm8k")


def test_a_notebook_that_raises_is_graded_up_to_the_error(graded):
    lines, closing, status = lines_of(graded, "raises")
    assert closing == "0 passed, 2 failed" and status == 1
    assert lines[0].startswith("🐢 ❌ smoltalk → ChatML: stopped with TypeError: ")
    assert lines[1].startswith(
        "🐕 ❌ gsm8k → messages → ChatML: not reached: the notebook stopped earlier with TypeError"
    )


def test_a_notebook_past_its_time_limit_is_stopped_and_reported(graded):
    lines, closing, _ = lines_of(graded, "past its time limit")
    assert closing == "0 passed, 2 failed"
    assert all("not reached" in line and "time limit of 5 s" in line for line in lines), lines


def test_grading_leaves_the_learners_files_untouched(graded):
    assert graded["untouched"]


def test_each_grade_is_recorded_and_course_progress_shows_it(graded, capsys):
    records = read_records(graded["progress"])
    assert [(r["notebook"], r["passed"], r["failed"]) for r in records] == [(CHAT, 1, 1)]
    assert main(["progress", "--workspace", str(graded["progress"])]) == 0
    table = capsys.readouterr().out
    assert re.search(r"🐢 smoltalk → ChatML +✅ passed, 1 grade, first passed ", table), table
    assert re.search(r"🐕 gsm8k → messages → ChatML +❌ failed, 1 grade", table), table
    graded_exercises = sum(graded for *_, graded in module_exercises())
    assert table.strip().endswith(f"1 of {graded_exercises} graded exercises passed")


def test_grade_refuses_what_is_not_a_course_notebook(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / "mine.ipynb")
    with pytest.raises(GradingError, match="not a copy of a course notebook"):
        grade(tmp_path / "mine.ipynb")


# --- how sections and verdicts become results, on a notebook written here (nothing executed) ---


def verdict_cell(source, *shown):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": text}, execution_count=1) for text in shown]
    return cell


def planted_notebook():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(
        cells=[
            md("## Setup\n\n```python\n# 🐢 not a heading: inside a code block\n```"),
            verdict_cell("check_setup()", "✅ not an exercise"),
            md("## Exercises\n\n### 🐢 First\n\nWrite it."),
            code("def answer(): ..."),
            md("#### Hint\n\nStill the first exercise."),
            verdict_cell("check_first(answer)", "✅ step one fine"),
            verdict_cell("check_first_again(answer)", "❌ step two:\n  wrong"),
            md("### 🐕 Second\n\n### 🦁 Third, open-ended"),
            md("### Notes\n\nNot an exercise, though at the same level."),
            verdict_cell("check_after()", "❌ after the exercises"),
        ]
    )


def test_exercises_are_the_marked_sections_and_their_code_cells():
    found = exercises(planted_notebook())
    assert [(e.label, e.cells) for e in found] == [
        ("🐢 First", [3, 5, 6]),
        ("🐕 Second", []),
        ("🦁 Third, open-ended", []),
    ]


def test_an_exercise_fails_on_its_first_failing_check_and_open_ones_are_not_counted():
    notebook = planted_notebook()
    results = [result_of(e, notebook, Execution(notebook)) for e in exercises(notebook)]
    assert [(r.status, r.message) for r in results] == [
        ("failed", "check 2/2: step two: wrong"),
        ("open", "open-ended, no checker: not graded"),
        ("open", "open-ended, no checker: not graded"),
    ]
    card = Scorecard(CHAT, "mine.ipynb", results, 1.0)
    assert card.text().splitlines()[-1] == "0 passed, 1 failed"


ERROR = "NameError: name 'x' is not defined"
SETUP = "check_setup()"


@pytest.mark.parametrize(
    "stopped_at, status, message",
    [
        (1, "not reached", f"not reached: the notebook stopped earlier with {ERROR} (in the cell starting `{SETUP}`)"),
        (5, "failed", f"stopped with {ERROR} (in the cell starting `check_first(answer)`)"),
        (9, "failed", "check 2/2: step two: wrong"),  # stopped after the exercise: graded as it ran
    ],
)
def test_an_exercise_is_graded_up_to_the_cell_that_stopped_the_notebook(stopped_at, status, message):
    notebook = planted_notebook()
    result = result_of(exercises(notebook)[0], notebook, Execution(notebook, stopped_at, ERROR))
    assert (result.status, result.message) == (status, message)


def test_progress_table_lists_every_exercise_with_its_latest_result(tmp_path):
    notebook = planted_notebook()
    first = exercises(notebook)[0]
    for status in ("failed", "passed", "failed"):
        results = [result_of(first, notebook, Execution(notebook))]
        results[0].status = status
        append_record(Scorecard(CHAT, "mine.ipynb", results, 1.0), tmp_path)
    table = progress_table(tmp_path).splitlines()
    assert table[0].endswith(": 3 graded runs")
    assert "🐢 smoltalk → ChatML" in table[2] and "not graded yet" in table[2]
    row = next(line for line in table if "🐢 First" in line)
    assert "❌ failed, 3 grades, first passed" in row
    assert table[-1] == f"0 of {sum(graded for *_, graded in module_exercises()) + 1} graded exercises passed"
