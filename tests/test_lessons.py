"""Lessons teach what the pinned libraries do: their code runs, their outputs are real, their links resolve."""

import re
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from course_harness.lesson_blocks import python_blocks, run_lesson
from course_harness.markdown_files import links
from course_harness.runner import offline_environment
from tests.paths import ROOT

MODULE = ROOT / "1_instruction_tuning"
LESSONS = [MODULE / "chat_templates.md", MODULE / "supervised_fine_tuning.md"]
TRANSLATIONS = sorted((ROOT / "translations").glob("*/1_instruction_tuning/*.md"))
MARKDOWN_FILES = [ROOT / "README.md", MODULE / "README.md", *LESSONS, *TRANSLATIONS]
EXTERNAL_LINKS = ROOT / "tests" / "external_links.txt"
MAX_NO_RUN_BLOCKS = 3


def ids(paths):
    return [str(path.relative_to(ROOT)) for path in paths]


@pytest.mark.parametrize("lesson", LESSONS, ids=ids(LESSONS))
def test_lesson_code_runs_and_prints_what_it_shows(lesson, tiny, tmp_path, monkeypatch):
    for key, value in offline_environment(tmp_path / "datasets-cache").items():
        monkeypatch.setenv(key, value)
    runs = run_lesson(lesson, tiny, tmp_path)
    assert runs, f"{lesson.name} has no python block that runs"
    for run in runs:
        if run.block.shown_output is not None:
            assert run.printed.strip() == run.block.shown_output.strip(), (
                f"{lesson.name}, the output shown after the block at line {run.block.line} is not what it prints:\n"
                f"--- shown\n{run.block.shown_output}\n--- printed\n{run.printed}"
            )


@pytest.mark.parametrize("lesson", TRANSLATIONS, ids=ids(TRANSLATIONS))
def test_translated_code_blocks_compile(lesson):
    """Translations share the English code (the parity test checks it, comments aside), and the English
    blocks run above: what a translation can still break is the syntax, with a translated comment."""
    for block in python_blocks(lesson.read_text(encoding="utf-8")):
        compile(block.source, f"{lesson}:{block.line}", "exec")


@pytest.mark.parametrize("lesson", LESSONS, ids=ids(LESSONS))
def test_blocks_not_run_are_rare_and_say_why(lesson):
    skipped = [block for block in python_blocks(lesson.read_text()) if block.no_run_reason]
    assert len(skipped) <= MAX_NO_RUN_BLOCKS, [f"line {b.line}: {b.no_run_reason}" for b in skipped]


def self_check(markdown_text):
    """The numbered questions of a lesson's self-check section (the one section holding ``<details>``), each with
    its answer: the text between ``</summary>`` and ``</details>`` in the question's list item, or None."""
    tokens = MarkdownIt().parse(markdown_text)
    lines = markdown_text.splitlines()
    starts = [t.map[0] for t in tokens if t.type == "heading_open" and t.tag == "h2"] + [len(lines)]
    spans = [(a, b) for a, b in zip(starts, starts[1:]) if "<details>" in "\n".join(lines[a:b])]
    assert len(spans) == 1, f"expected one section with <details> answers, found {len(spans)}"
    first, end = spans[0]
    items = [t for t in tokens if t.type == "list_item_open" and t.level == 1 and first <= t.map[0] < end]
    questions = []
    for item in items:
        text = "\n".join(lines[item.map[0] : item.map[1]])
        answer = re.search(r"<details>\s*<summary>.*?</summary>(.*?)</details>", text, re.S)
        questions.append((text.splitlines()[0], answer.group(1).strip() or None if answer else None))
    return questions


TRANSLATED_LESSONS = [path for path in TRANSLATIONS if path.name != "README.md"]


@pytest.mark.parametrize("lesson", LESSONS + TRANSLATED_LESSONS, ids=ids(LESSONS + TRANSLATED_LESSONS))
def test_lesson_has_self_check_questions_each_answered(lesson):
    questions = self_check(lesson.read_text(encoding="utf-8"))
    assert 5 <= len(questions) <= 7, f"{lesson.name}: {len(questions)} self-check questions, expected 5 to 7"
    unanswered = [question for question, answer in questions if not answer]
    assert not unanswered, f"{lesson.name}: questions without a <details> answer: {unanswered}"


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    tokens = MarkdownIt().parse(path.read_text(encoding="utf-8"))
    return {github_anchor(tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"}


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=ids(MARKDOWN_FILES))
def test_relative_links_and_anchors_resolve(path):
    for target in links(path):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = unquote(target).partition("#")  # the parser percent-encodes non-ASCII
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name} links to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name} links to missing anchor #{anchor} in {linked.name}"


def external_links():
    return sorted(
        {
            t
            for path in MARKDOWN_FILES
            for t in links(path)
            if t.startswith("http") and "colab.research.google.com" not in t
        }
    )


def test_external_links_are_listed_for_review():
    """CI has no network: external links are collected in tests/external_links.txt to be checked by hand."""
    listed = [line for line in EXTERNAL_LINKS.read_text().splitlines() if line and not line.startswith("#")]
    assert external_links() == sorted(listed), "run: python -m tests.test_lessons > tests/external_links.txt"


def colab_badges(path):
    return [t for t in links(path) if t.startswith("https://colab.research.google.com/github/")]


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=ids(MARKDOWN_FILES))
def test_colab_badges_use_the_repository_slug_and_existing_notebooks(path, repo_slug):
    prefix = f"https://colab.research.google.com/github/{repo_slug}/blob/main/"
    for badge in colab_badges(path):
        assert badge.startswith(prefix), f"{path.name}: badge {badge} does not use {repo_slug}"
        assert (ROOT / badge.removeprefix(prefix)).exists(), f"{path.name}: badge points at a missing notebook {badge}"


if __name__ == "__main__":
    print("# External links in the lessons and READMEs (CI cannot reach them: check by hand).")
    print("\n".join(external_links()))
