"""``course``: run the course offline and maintain it, in one command.

course run [NOTEBOOK ...]        execute the notebooks offline on the tiny default
course translations [--diff]     how far each translation is behind the English
course refresh [NOTEBOOK ...]    store fresh outputs in the committed notebooks
course build-tiny OUT            write the tiny default (base and instruct) into OUT
course lesson LESSON ...         run a lesson's code blocks and print what each printed
course workspace [--force]       write learner copies of the notebooks, ready to open offline
course grade NOTEBOOK            grade a learner's notebook offline: one line per exercise
course progress                  the learner's latest result for every exercise of the module
"""

import argparse
import shlex
import sys
from pathlib import Path


def run_command(args):
    from course_harness.paths import NOTEBOOK_RUNS
    from course_harness.runner import print_table, run_all

    out = args.out or NOTEBOOK_RUNS
    selected = set(args.notebooks)
    summary = run_all(out, selected, progress=lambda line: print(line, flush=True), notebook_dir=args.from_dir)
    if not summary:
        print(f"no notebook matched {args.notebooks}", file=sys.stderr)
        return 2
    print()
    print_table(summary)
    print(f"executed copies and summary.json in {Path(out) / 'executed'}")
    return 0 if all(entry["status"] == "passed" for entry in summary.values()) else 1


def translations_command(args):
    from course_harness.translations import report

    print(report(show_diff=args.diff))
    return 0


def refresh_command(args):
    from course_harness.refresh import refresh

    return refresh(set(args.notebooks))


def build_tiny_command(args):
    from course_harness.tiny_default import build_tiny_default

    for flavour, path in build_tiny_default(args.out).items():
        print(f"{flavour}: {path}")
    return 0


def lesson_command(args):
    from course_harness.lesson_blocks import print_lesson_outputs

    print_lesson_outputs(args.lessons)
    return 0


def workspace_command(args):
    from course_harness.workspace import DEFAULT_WORKSPACE, create_workspace

    report = create_workspace(args.dir or DEFAULT_WORKSPACE, force=args.force)
    print(f"workspace: {report.folder}")
    for name in report.written:
        print(f"  wrote {name}")
    for name in report.kept:
        print(f"  kept  {name}: you edited it (--force replaces it with a fresh copy)")
    print("open the notebooks (offline, on the tiny default):")
    print(f"  jupyter lab {shlex.quote(str(report.folder))}")
    print("grade one:")
    print(f"  course grade {shlex.quote(str(report.folder / (report.written + report.kept)[0]))}")
    return 0


def grade_command(args):
    from course_harness.grader import GradingError, grade
    from course_harness.learner_progress import append_record
    from course_harness.workspace import workspace_of

    try:
        scorecard = grade(args.notebook, time_limit=args.time_limit, progress=lambda line: print(line, file=sys.stderr))
    except GradingError as error:
        print(error, file=sys.stderr)
        return 2
    progress_file = append_record(scorecard, args.workspace or workspace_of(args.notebook))
    print(f"recorded in {progress_file} (course progress shows the table)", file=sys.stderr, flush=True)
    print(scorecard.text())
    return 0 if scorecard.failed == 0 else 1


def progress_command(args):
    from course_harness.learner_progress import progress_table
    from course_harness.workspace import DEFAULT_WORKSPACE

    print(progress_table(args.workspace or DEFAULT_WORKSPACE))
    return 0


def parser():
    main = argparse.ArgumentParser(
        prog="course", description="Run the instruction-tuning course offline and maintain it."
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="execute the notebooks offline on the tiny default, with progress")
    run.add_argument("notebooks", nargs="*", help="notebook file names (default: all)")
    run.add_argument("--out", type=Path, help="where executed copies and summary.json go (default: build/notebooks)")
    run.add_argument("--from-dir", type=Path, help=argparse.SUPPRESS)  # tests run a planted notebook folder
    run.set_defaults(handler=run_command)

    translations = commands.add_parser("translations", help="tell how far each translation is behind the English")
    translations.add_argument("--diff", action="store_true", help="show the English changes each stale file lacks")
    translations.set_defaults(handler=translations_command)

    refresh = commands.add_parser("refresh", help="store fresh outputs of checked cells in the committed notebooks")
    refresh.add_argument("notebooks", nargs="*", help="notebook file names (default: all)")
    refresh.set_defaults(handler=refresh_command)

    build_tiny = commands.add_parser("build-tiny", help="write the tiny default (base and instruct) into a folder")
    build_tiny.add_argument("out", type=Path, help="folder to write base/ and instruct/ into")
    build_tiny.set_defaults(handler=build_tiny_command)

    lesson = commands.add_parser("lesson", help="run a lesson's code blocks offline and print their output")
    lesson.add_argument("lessons", nargs="+", help="markdown lesson files")
    lesson.set_defaults(handler=lesson_command)

    workspace = commands.add_parser("workspace", help="write learner copies of the notebooks, ready to open offline")
    workspace.add_argument("--dir", type=Path, help="the folder (default: workspace/ in the repository)")
    workspace.add_argument("--force", action="store_true", help="replace copies you edited with fresh ones")
    workspace.set_defaults(handler=workspace_command)

    grade = commands.add_parser("grade", help="grade a learner's notebook offline: one line per exercise")
    grade.add_argument("notebook", type=Path, help="the .ipynb file (it is only read)")
    grade.add_argument("--time-limit", type=int, default=600, help="seconds the notebook may run (default: 600)")
    grade.add_argument("--workspace", type=Path, help="where progress.jsonl goes (default: the notebook's workspace)")
    grade.set_defaults(handler=grade_command)

    progress = commands.add_parser("progress", help="the learner's latest result for every exercise of the module")
    progress.add_argument("--workspace", type=Path, help="the workspace to read (default: workspace/)")
    progress.set_defaults(handler=progress_command)
    return main


def main(argv=None):
    args = parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
