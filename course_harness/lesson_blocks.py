"""Run the code blocks of a markdown lesson, as the test suite does.

The one mechanism, for every lesson and translation:

* Each fenced ``python`` block runs, in order, in one namespace per file (like notebook cells).
* Before a block runs, each hub name in ``OFFLINE_STAND_INS`` is replaced in its source by the
  offline stand-in (the tiny default model or a dataset fixture folder), so lessons show the
  real names and the tests never download anything.
* A block whose info string is ``python no-run: <reason>`` is shown to readers but not run.
* A ``text`` block that directly follows a python block is what that block prints: the test
  compares it with what the block really printed.

Run one lesson by hand: ``course lesson 1_instruction_tuning/chat_templates.md``.
"""

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from course_harness.runner import offline_stand_ins

NO_RUN = "no-run:"


@dataclass
class Block:
    line: int
    source: str
    no_run_reason: str | None
    shown_output: str | None


def python_blocks(markdown_text):
    """The python blocks of a lesson, each with the text block shown right after it, if any."""
    fences = [token for token in MarkdownIt().parse(markdown_text) if token.type == "fence"]
    blocks = []
    for i, fence in enumerate(fences):
        language, _, rest = fence.info.strip().partition(" ")
        if language != "python":
            continue
        following = fences[i + 1] if i + 1 < len(fences) else None
        shown = None
        if following is not None and following.info.strip() == "text" and following.map[0] <= fence.map[1] + 1:
            shown = following.content
        reason = rest.strip()[len(NO_RUN) :].strip() if rest.strip().startswith(NO_RUN) else None
        if rest.strip() and reason is None:
            raise ValueError(f"line {fence.map[0] + 1}: unknown fence option {rest!r}; use 'python {NO_RUN} <reason>'")
        if reason == "":
            raise ValueError(f"line {fence.map[0] + 1}: a no-run block must say why it cannot run offline")
        blocks.append(Block(fence.map[0] + 1, fence.content, reason, shown))
    return blocks


@dataclass
class BlockRun:
    block: Block
    printed: str


class LessonBlockError(AssertionError):
    pass


def run_lesson(path, tiny, workdir):
    """Run a lesson's python blocks in ``workdir``; return one BlockRun per block that ran."""
    stand_ins = offline_stand_ins(tiny)
    namespace = {"__name__": "__lesson__"}
    runs = []
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        for block in python_blocks(Path(path).read_text(encoding="utf-8")):
            if block.no_run_reason:
                continue
            source = block.source
            for name, local in stand_ins.items():
                source = source.replace(name, local)
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    exec(compile(source, f"{path}:{block.line}", "exec"), namespace)
            except Exception as error:
                raise LessonBlockError(
                    f"{path}, the python block at line {block.line} raised {type(error).__name__}: {error}"
                ) from error
            runs.append(BlockRun(block, printed.getvalue()))
    finally:
        os.chdir(previous)
    return runs


def print_lesson_outputs(lessons):
    """Run lessons on the tiny default and print what each block printed (``course lesson``)."""
    import tempfile

    from course_harness.runner import offline_environment
    from course_harness.tiny_cache import tiny_default

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(offline_environment(Path(tmp) / "datasets-cache"))
        tiny = tiny_default()
        for lesson in lessons:
            for run in run_lesson(Path(lesson).resolve(), tiny, tmp):
                shown = run.block.shown_output
                differs = shown is not None and shown.strip() != run.printed.strip()
                print(f"--- {lesson}:{run.block.line}{'  <- differs from the text block shown' if differs else ''}")
                print(run.printed)
