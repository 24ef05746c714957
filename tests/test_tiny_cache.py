"""The tiny default is built once and reused while what it is built from stays the same."""

import json
import shutil
from pathlib import Path

import pytest

from course_harness import tiny_cache
from course_harness import tiny_default as tiny_default_module


def test_a_current_build_is_reused_and_a_stale_one_rebuilt(tmp_path, monkeypatch):
    """The builder is counted, not run: test_tiny_default.py checks that the kept build equals a fresh one."""
    builds = []

    def build_tiny_default(out_dir):
        builds.append(out_dir)
        for flavour in ("base", "instruct"):
            (Path(out_dir) / flavour).mkdir(parents=True)
            (Path(out_dir) / flavour / "config.json").write_text("{}")

    monkeypatch.setattr(tiny_default_module, "build_tiny_default", build_tiny_default)
    monkeypatch.setattr(tiny_cache, "BUILD", tmp_path)
    monkeypatch.setattr(tiny_cache, "SHARED_TINY", tmp_path / "tiny-default")
    assert sorted(tiny_cache.tiny_default()) == ["base", "instruct"]
    assert sorted(tiny_cache.tiny_default()) == ["base", "instruct"]
    assert len(builds) == 1, "a current build was built again"

    stale = dict(tiny_cache.fingerprint(), sources="built from another builder")
    (tmp_path / "tiny-default" / tiny_cache.FINGERPRINT_FILE).write_text(json.dumps(stale))
    assert not tiny_cache.is_current(tmp_path / "tiny-default")
    tiny_cache.tiny_default()
    assert len(builds) == 2, "a stale build was kept"
    assert tiny_cache.is_current(tmp_path / "tiny-default")


def test_another_folder_gets_a_copy_of_the_shared_build(tiny, tmp_path):
    copy = tiny_cache.tiny_default(tmp_path / "workspace" / "tiny-default")
    assert sorted(copy) == ["base", "instruct"]
    for flavour, path in copy.items():
        assert sorted(p.name for p in path.iterdir()) == sorted(p.name for p in tiny[flavour].iterdir())
    assert tiny_cache.is_current(tmp_path / "workspace" / "tiny-default")


def test_the_fingerprint_follows_the_builder_the_fixtures_and_the_libraries(tmp_path, monkeypatch):
    before = tiny_cache.fingerprint()
    builder = tmp_path / "tiny_default.py"
    builder.write_text("# one builder\n")
    monkeypatch.setattr(tiny_cache, "BUILT_FROM", [builder])
    one = tiny_cache.fingerprint()
    builder.write_text("# another builder\n")
    two = tiny_cache.fingerprint()
    (tmp_path / "chats.jsonl").write_text('{"messages": []}\n')
    monkeypatch.setattr(tiny_cache, "fixture_text_files", lambda: [tmp_path / "chats.jsonl"])
    three = tiny_cache.fingerprint()
    monkeypatch.setattr(tiny_cache.metadata, "version", lambda name: "0.0.1" if name == "transformers" else "1.0")
    four = tiny_cache.fingerprint()
    assert len({json.dumps(fingerprint) for fingerprint in (before, one, two, three, four)}) == 5
    assert set(before["versions"]) == {"torch", "tokenizers", "transformers", "safetensors"}


def test_an_interrupted_copy_is_not_taken_for_a_current_one(tiny, tmp_path, monkeypatch):
    def copy_half_then_fail(source, target):
        Path(target).mkdir(parents=True)
        shutil.copy(Path(source) / tiny_cache.FINGERPRINT_FILE, target)  # copytree's order is the folder's
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(tiny_cache.shutil, "copytree", copy_half_then_fail)
        with pytest.raises(KeyboardInterrupt):
            tiny_cache.tiny_default(tmp_path / "tiny-default")
    assert not tiny_cache.is_current(tmp_path / "tiny-default")
    assert sorted(tiny_cache.tiny_default(tmp_path / "tiny-default")) == ["base", "instruct"]
