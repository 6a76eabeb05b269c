import json

import pytest

from cardioembed.artifacts import (
    atomic_dir,
    atomic_path,
    is_current,
    load_manifest,
    params_hash,
    write_manifest,
)


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_atomic_path_gives_the_usual_permissions(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        tmp.write_text("{}")
    assert (tmp_path / "a.json").stat().st_mode & 0o044 == 0o044  # readable by others
    with atomic_dir(tmp_path / "folder"):
        pass
    assert (tmp_path / "folder").stat().st_mode & 0o055 == 0o055


def test_atomic_dir_replaces_the_whole_folder_only_on_success(tmp_path):
    target = tmp_path / "corpus"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_manifest_records_params_outputs_and_environment(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    write_manifest(tmp_path, kind="corpus", params={"seed": 1, "b": [1, 2]}, seconds=1.23456)
    manifest = load_manifest(tmp_path)
    assert manifest["kind"] == "corpus"
    assert set(manifest["outputs"]) == {"x.txt"}
    assert manifest["seconds"] == 1.235
    assert "torch" in manifest["environment"]["packages"]
    assert is_current(tmp_path, "corpus", {"b": [1, 2], "seed": 1})
    assert not is_current(tmp_path, "corpus", {"b": [1, 2], "seed": 2})


def test_unfinished_or_corrupt_manifest_means_no_artifact(tmp_path):
    assert load_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    assert load_manifest(tmp_path) is None
    assert not is_current(tmp_path, "corpus", {})


def test_params_hash_ignores_key_order():
    assert params_hash({"a": 1, "b": 2}) == params_hash(json.loads('{"b": 2, "a": 1}'))


def test_a_change_to_the_textbook_reader_makes_a_new_corpus(tmp_path, monkeypatch):
    """The corpus's key holds the reader's code, which lives in its own package."""
    import shutil

    from cardioembed import artifacts

    for part in ("cardioembed", "textbook_reader", "notebooks"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(artifacts.ROOT / part, tmp_path / part, ignore=ignore)
    monkeypatch.setattr(artifacts, "ROOT", tmp_path)
    artifacts.code_hash.cache_clear()
    try:
        before = {kind: artifacts.code_hash(kind) for kind in ("corpus", "evaluation")}
        cleaning = tmp_path / "textbook_reader" / "cleaning.py"
        cleaning.write_text(cleaning.read_text().replace("EXAMPLES = 3", "EXAMPLES = 4"))
        artifacts.code_hash.cache_clear()
        assert artifacts.code_hash("corpus") != before["corpus"]
        assert artifacts.code_hash("evaluation") == before["evaluation"]
    finally:
        artifacts.code_hash.cache_clear()
