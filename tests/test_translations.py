"""Translations keep the English structure and say which English commit they follow."""

import pytest

from course_harness.translations import (
    ROOT,
    commit_exists,
    parity_mismatches,
    source_record,
    staleness,
    translated_files,
)

FILES = translated_files()
IDS = [str(path.relative_to(ROOT)) for path in FILES]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_translation_exists(path):
    assert path.exists(), f"missing translation {path.relative_to(ROOT)} (see translations/TRANSLATING.md)"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_translation_records_an_existing_english_commit(path):
    record = source_record(path)
    assert record, "first line must be <!-- source: 1_instruction_tuning/<file> @ <commit> -->"
    source, commit = record
    assert source == f"1_instruction_tuning/{path.name}"
    assert commit_exists(commit), f"recorded commit {commit} is not in this repository's history"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_translation_matches_the_english_structure(path):
    mismatches = parity_mismatches(path)
    assert not mismatches, "\n".join(
        f"{m.what} differ:\n  English:     {m.english}\n  translation: {m.translation}" for m in mismatches
    )


def test_staleness_report_names_every_file():
    assert all(staleness(path) for path in FILES if path.exists())


def test_root_readme_links_every_translation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for lang in ("ja", "zh", "ko", "fr"):
        assert f"translations/{lang}/1_instruction_tuning/README.md" in readme


@pytest.mark.parametrize("lang", ["ja", "zh", "ko", "fr"])
def test_translated_module_readme_links_english_and_other_languages(lang):
    text = (ROOT / "translations" / lang / "1_instruction_tuning" / "README.md").read_text(encoding="utf-8")
    assert "../../../1_instruction_tuning/README.md" in text
    for other in {"ja", "zh", "ko", "fr"} - {lang}:
        assert f"../../{other}/1_instruction_tuning/README.md" in text
