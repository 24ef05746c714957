"""The tiny default is built once and reused while what it is built from stays the same."""

import json
import shutil
from pathlib import Path

import pytest

from course_harness import tiny_cache


def test_a_current_build_is_reused_and_a_stale_one_rebuilt(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_cache, "BUILD", tmp_path)
    monkeypatch.setattr(tiny_cache, "SHARED_TINY", tmp_path / "tiny-default")
    built = tiny_cache.tiny_default()
    weights = built["base"] / "model.safetensors"
    assert weights.read_bytes() == (tiny["base"] / "model.safetensors").read_bytes()
    first_build = weights.stat().st_mtime_ns
    assert tiny_cache.tiny_default()["base"].joinpath("model.safetensors").stat().st_mtime_ns == first_build

    stale = dict(tiny_cache.fingerprint(), sources="built from another builder")
    (tmp_path / "tiny-default" / tiny_cache.FINGERPRINT_FILE).write_text(json.dumps(stale))
    assert not tiny_cache.is_current(tmp_path / "tiny-default")
    tiny_cache.tiny_default()
    assert weights.stat().st_mtime_ns != first_build
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
