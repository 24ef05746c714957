"""Keep translations in step with the English lessons: parity checks and a staleness report.

Each translated file starts with a comment recording its English source and the commit it was
translated from:

    <!-- source: 1_instruction_tuning/chat_templates.md @ 1a2b3c4d... -->

    course translations          # per file: current, or stale with the English diff stat
    course translations --diff   # the English changes each stale file has to catch up on
"""

import re
import subprocess
from collections import Counter
from dataclasses import dataclass

from markdown_it import MarkdownIt

from course_harness.markdown_files import links
from course_harness.paths import ROOT

LANGUAGES = ("ja", "zh", "ko", "fr")
LESSONS = ("README.md", "chat_templates.md", "supervised_fine_tuning.md")
SOURCE = re.compile(r"<!-- source: (\S+) @ ([0-9a-f]{7,40}) -->")
MARKERS = ("🐢", "🐕", "🦁")


def translated_files():
    return [ROOT / "translations" / lang / "1_instruction_tuning" / name for lang in LANGUAGES for name in LESSONS]


def english_of(path):
    return ROOT / "1_instruction_tuning" / path.name


def source_record(path):
    """(English path, commit) recorded at the top of a translated file, or None."""
    match = SOURCE.search(path.read_text(encoding="utf-8").split("\n", 1)[0])
    return (match.group(1), match.group(2)) if match else None


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def commit_exists(commit):
    return git("cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


# --- parity -------------------------------------------------------------------------------------


def _tokens(path):
    return MarkdownIt().enable("table").parse(path.read_text(encoding="utf-8"))


def headings(path):
    return [token.tag for token in _tokens(path) if token.type == "heading_open"]


def strip_comments(code, language):
    """Code with comments set aside: translators may translate comments, nothing else."""
    if language == "python":
        code = "\n".join(re.sub(r"\s+#.*$|^\s*#.*$", "", line) for line in code.splitlines())
    return "\n".join(line for line in code.splitlines() if line.strip())


def code_blocks(path):
    blocks = []
    for token in _tokens(path):
        if token.type == "fence":
            language = token.info.split(" ")[0]
            blocks.append(
                (token.info.strip() if language != "python" else language, strip_comments(token.content, language))
            )
    return blocks


def link_targets(path):
    """Link targets, resolved; a link to a lesson of the same language counts as a link to the English lesson."""
    module = path.parent
    targets = []
    for href in links(path):
        file_part = href.split("#")[0]
        if not file_part or re.match(r"[a-z]+:", href):
            targets.append(file_part or "#")
            continue
        resolved = (module / file_part).resolve()
        if resolved.parent == module.resolve():
            resolved = ROOT / "1_instruction_tuning" / resolved.name
        targets.append(str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved))
    return targets


def table_shapes(path):
    shapes, rows, columns = [], 0, 0
    for token in _tokens(path):
        if token.type == "table_open":
            rows, columns = 0, 0
        elif token.type == "tr_open":
            rows += 1
        elif token.type in ("th_open", "td_open") and rows == 1:
            columns += 1
        elif token.type == "table_close":
            shapes.append((rows, columns))
    return shapes


def markers(path):
    text = path.read_text(encoding="utf-8")
    return {marker: text.count(marker) for marker in MARKERS}


@dataclass
class Mismatch:
    what: str
    english: object
    translation: object


def first_difference(what, english_items, translated_items):
    """The first item at which two lists differ, and their lengths, rather than two whole lists."""
    at = next(
        (i for i, (a, b) in enumerate(zip(english_items, translated_items)) if a != b),
        min(len(english_items), len(translated_items)),
    )
    english = english_items[at] if at < len(english_items) else "(none)"
    translation = translated_items[at] if at < len(translated_items) else "(none)"
    label = f"{what}, item {at + 1} (English has {len(english_items)}, the translation {len(translated_items)})"
    return Mismatch(label, english, translation)


def parity_mismatches(path):
    """What differs in structure between a translated file and its English source.

    Links between languages (into translations/, or from a translation back to its own English
    file) belong to the language switcher and are left out of the comparison.
    """
    english = english_of(path)
    mismatches = []
    checks = (("headings", headings), ("code blocks", code_blocks), ("table shapes", table_shapes))
    for what, extract in checks:
        english_items, translated_items = extract(english), extract(path)
        if english_items != translated_items:
            mismatches.append(first_difference(what, english_items, translated_items))
    if markers(english) != markers(path):
        mismatches.append(Mismatch("exercise markers", markers(english), markers(path)))
    own = str(english.relative_to(ROOT))
    english_links = Counter(t for t in link_targets(english) if not t.startswith("translations/"))
    translated_links = Counter(t for t in link_targets(path) if not t.startswith("translations/") and t != own)
    if english_links != translated_links:
        mismatches.append(
            Mismatch(
                "link targets",
                sorted((english_links - translated_links).elements()),
                sorted((translated_links - english_links).elements()),
            )
        )
    return mismatches


# --- staleness ----------------------------------------------------------------------------------


def staleness(path):
    """'current', 'stale: <diff stat>', or a problem with the recorded source."""
    record = source_record(path)
    if record is None:
        return "missing: no '<!-- source: ... @ commit -->' line at the top"
    source, commit = record
    if source != str(english_of(path).relative_to(ROOT)):
        return f"wrong source: records {source}"
    if not commit_exists(commit):
        return f"unknown commit {commit}"
    changed = git("diff", "--stat", commit, "HEAD", "--", source).stdout.strip()
    uncommitted = git("diff", "--stat", "HEAD", "--", source).stdout.strip()
    if changed or uncommitted:
        return "stale: " + (changed or uncommitted).splitlines()[-1].strip()
    return "current"


def report(show_diff=False):
    lines = []
    for path in translated_files():
        state = staleness(path) if path.exists() else "missing file"
        lines.append(f"{str(path.relative_to(ROOT)):<58} {state}")
        if show_diff and state.startswith("stale"):
            lines.append(git("diff", source_record(path)[1], "--", source_record(path)[0]).stdout)
    return "\n".join(lines)
