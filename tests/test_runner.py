"""The runner on a tiny project of its own: parameters, progress, failures, records,
isolation of runs, and the book's staging of the last successful run."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time

import nbformat
import pytest

from cardioembed import cli
from cardioembed.book import runner
from cardioembed.book.runner import (
    STATUS_TABLE,
    TIMES_TABLE,
    NotebookFailed,
    absolute_paths,
    build_book,
    run_profile,
    status_table,
)
from cardioembed.envinfo import format_duration
from cardioembed.errors import InputError, ParameterError
from cardioembed.paths import CACHE_ENV, run_dir
from cardioembed.profiles import (
    Profile,
    load_profile,
    notebook_values,
    notebooks,
    parse_overrides,
)


def _notebook(path, parameters_source, body_source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A title"),
        nbformat.v4.new_code_cell(parameters_source, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body_source),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture()
def tiny_project(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "cardioembed").mkdir()
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mini.yaml").write_text(
        "description: a tiny profile\nscale: 2\nwords: [a, b]\n"
    )
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "01_first.ipynb",
        "profile: str = 'teaching'  # profile name\nscale: int = 1  # a factor\n"
        "words: list = ['x']  # some words\nruns_root: str = ''  # run folders\n"
        "rate: float = 0.5  # a rate",
        "import pathlib\npathlib.Path('../out.json').write_text("
        "__import__('json').dumps({'profile': profile, 'scale': scale, 'words': words}))\n"
        "art = pathlib.Path(runs_root or '../runs') / profile / 'art'\n"
        "art.mkdir(parents=True, exist_ok=True)\n"
        "(art / 'manifest.json').write_text('{}')",
    )
    _notebook(
        notebooks / "02_second.ipynb",
        "scale: int = 1  # a factor",
        "value = scale * 10\nassert value < 50, 'scale too large'",
    )
    monkeypatch.setenv("CARDIOEMBED_ROOT", str(tmp_path))
    return tmp_path


def _progress(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cardioembed.book.runner"]


def test_profile_values_and_overrides_reach_the_notebooks(tiny_project, caplog):
    caplog.set_level(logging.INFO, logger="cardioembed")
    profile = load_profile("mini").with_overrides({"words": ["c"]})
    results = run_profile(profile, output_dir=tiny_project / "executed")
    assert [p.name for p in results] == ["01_first.ipynb", "02_second.ipynb"]
    assert json.loads((tiny_project / "out.json").read_text()) == {
        "profile": "mini",
        "scale": 2,
        "words": ["c"],
    }
    # One line per notebook: its name, its time, and what it wrote (01 writes an artifact).
    lines = _progress(caplog)
    assert len(lines) == 2 and lines[0].startswith("[1/2] 01_first  ")
    assert " s  wrote art/ in " in lines[0] and "wrote no new artifact" in lines[1]
    executed = json.loads((tiny_project / "executed" / "01_first.ipynb").read_text())
    # The book shows the parameters cell, not papermill's copy of the values.
    tags = [c["metadata"].get("tags", []) for c in executed["cells"]]
    assert ["parameters"] in tags and ["injected-parameters", "remove-cell"] in tags
    record = executed["metadata"]["cardioembed"]
    assert record["profile"] == "mini" and record["parameters"]["scale"] == 2
    assert "torch" in record["environment"]["packages"]


def test_values_of_another_type_than_declared_are_refused_before_anything_runs(tiny_project):
    for value, declared in (("fast", "an int"), (2.5, "an int"), (True, "an int")):
        with pytest.raises(ParameterError, match=f"'scale' = .*01_first declares it {declared}"):
            run_profile(load_profile("mini").with_overrides({"scale": value}))
    with pytest.raises(ParameterError, match="'rate' = 'fast': .* declares it a float, e.g. 0.5"):
        run_profile(load_profile("mini").with_overrides({"rate": "fast"}))
    assert not (tiny_project / "runs").exists() and not (tiny_project / "out.json").exists()
    run_profile(load_profile("mini").with_overrides({"rate": 1}))  # a whole number is a float


def test_notebook_values_are_defaults_then_profile_then_overrides(tiny_project):
    assert notebook_values("01", "mini", {"rate": 2}) == {
        "profile": "mini",
        "scale": 2,
        "words": ["a", "b"],
        "runs_root": "",
        "rate": 2,
    }
    assert notebook_values("02_second", "mini") == {"scale": 2}
    with pytest.raises(InputError, match="no notebook declares parameter.*words"):
        notebook_values("02", "mini", {"words": []})
    with pytest.raises(ParameterError, match="'scale' = 'x'"):
        notebook_values("02", "mini", {"scale": "x"})


def test_the_book_shows_each_notebooks_time_from_its_run_record(tiny_project, monkeypatch):
    profile = load_profile("mini")
    run_profile(profile, only=["01"], output_dir=tiny_project / "executed")
    run_profile(profile, only=["02"], output_dir=tiny_project / "executed")
    tables = {}

    def fake_jupyter_book(command, cwd):
        for name in (TIMES_TABLE, STATUS_TABLE):
            tables[name] = (cwd / "book" / "executed" / name).read_text()
        return 0

    monkeypatch.setattr(runner, "_jupyter_book", fake_jupyter_book)
    build_book(root=tiny_project, executed=tiny_project / "executed")
    # Both notebooks, although each run executed only one: the tables are the records'.
    for name in ("01_first", "02_second"):
        path = tiny_project / "executed" / f"{name}.ipynb"
        record = json.loads(path.read_text())["metadata"]["cardioembed"]
        for table in tables.values():
            row = next(line for line in table.splitlines() if f"`{name}`" in line)
            assert format_duration(record["seconds"]) in row
            assert str(record["environment"]["cpu_count"]) in row and "mini" in row
    assert not [p for p in (tiny_project / "executed").iterdir() if p.name.startswith(".")]


def test_durations_are_written_in_the_largest_useful_unit():
    assert format_duration(9.96) == "10.0 s"
    assert format_duration(75.5) == "1 min 16 s"
    assert format_duration(3 * 3600 + 7 * 60 + 2) == "3 h 07 min"


def test_failure_names_the_notebook_and_the_cell(tiny_project):
    profile = Profile("mini", {"profile": "mini", "scale": 9})
    with pytest.raises(
        NotebookFailed,
        match=(
            r"(?s)02_second.ipynb failed in the cell with execution count 3 "
            r"\(starting `value = scale \* 10`\): AssertionError: scale too large"
            r".*no run had been published before"
        ),
    ):
        run_profile(profile, output_dir=tiny_project / "executed")
    # No run had succeeded: the message does not claim one is kept.
    assert not (tiny_project / "executed").exists()


def test_only_selects_by_number_or_name(tiny_project):
    assert [p.stem for p in notebooks(["2"], tiny_project)] == ["02_second"]
    assert [p.stem for p in notebooks(["01_first"], tiny_project)] == ["01_first"]
    with pytest.raises(InputError, match="matches no notebook"):
        notebooks(["07"], tiny_project)


def test_unknown_parameter_is_refused_by_name(tiny_project):
    profile = load_profile("mini").with_overrides({"scael": 3})
    with pytest.raises(InputError, match="scael"):
        run_profile(profile, output_dir=tiny_project / "executed")


def test_overrides_are_typed():
    assert parse_overrides(["temperature=0.02", "sources=[hpo]", "flag=true", "name=abc"]) == {
        "temperature": 0.02,
        "sources": ["hpo"],
        "flag": True,
        "name": "abc",
    }
    with pytest.raises(InputError, match="key=value"):
        parse_overrides(["temperature"])


def test_cli_reports_errors_without_a_traceback(tiny_project, capsys):
    assert cli.main(["run", "--profile", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no profile 'nosuch'" in err and "mini" in err and "Traceback" not in err
    assert (
        cli.main(
            [
                "run",
                "--profile",
                "mini",
                "-p",
                "scale=9",
                "--output-dir",
                str(tiny_project / "executed"),
            ]
        )
        == 1
    )
    assert "02_second.ipynb failed" in capsys.readouterr().err


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(folder):
    """Temporary folders of a run, which must not outlive it."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_relative_runs_root_is_taken_from_the_working_directory(tiny_project, monkeypatch):
    work = tiny_project / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    profile = load_profile("mini").with_overrides({"runs_root": "rel"})
    run_profile(profile)
    # The kernel runs in notebooks/, yet the artifact and the run land under work/rel.
    assert (work / "rel" / "mini" / "art" / "manifest.json").is_file()
    executed = work / "rel" / "mini" / "executed" / "01_first.ipynb"
    record = json.loads(executed.read_text())["metadata"]["cardioembed"]
    assert record["parameters"]["runs_root"] == str(work / "rel")
    assert not (tiny_project / "notebooks" / "rel").exists()


def test_path_parameters_are_made_absolute(tmp_path):
    (tmp_path / "local-model").mkdir()
    resolved = absolute_paths(
        {
            "runs_root": "r",
            "textbook_dir": "books/../books",
            "base_model": "local-model",
            "paraphrase_model": "Qwen/Qwen2.5-7B-Instruct",
            "extra_models": {"mine": "./local-model", "hub": "org/name"},
            "seed": 7,
        },
        tmp_path,
    )
    assert resolved == {
        "runs_root": str(tmp_path / "r"),
        "textbook_dir": str(tmp_path / "books"),
        "base_model": str(tmp_path / "local-model"),
        "paraphrase_model": "Qwen/Qwen2.5-7B-Instruct",  # a hub id, not a folder here
        "extra_models": {"mine": str(tmp_path / "local-model"), "hub": "org/name"},
        "seed": 7,
    }
    assert absolute_paths({"runs_root": ""}, tmp_path) == {"runs_root": ""}


def test_run_dir_is_absolute_and_refuses_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_dir("teaching", "scratch") == tmp_path / "scratch" / "teaching"
    assert run_dir("teaching", tmp_path / "abs") == tmp_path / "abs" / "teaching"
    (tmp_path / "afile").write_text("")
    with pytest.raises(ParameterError, match="runs_root.*is a file"):
        run_dir("teaching", "afile")
    with pytest.raises(ParameterError, match="profile"):
        run_dir("../up", "")


def test_a_failed_run_leaves_the_book_on_the_last_good_run(tiny_project, monkeypatch):
    good = load_profile("mini")
    run_profile(good)
    published = tiny_project / "runs" / "mini" / "executed"
    before = _files(published)
    with pytest.raises(NotebookFailed, match=r"(?s)executed-failed.*is unchanged"):
        run_profile(good.with_overrides({"scale": 9}))
    assert _files(published) == before
    # Each failed run keeps its own record, the last few of them.
    with pytest.raises(NotebookFailed):
        run_profile(good.with_overrides({"scale": 8}))
    failures = sorted((tiny_project / "runs" / "mini" / "executed-failed").iterdir())
    assert len(failures) == 2
    for failure, scale in zip(failures, (9, 8), strict=True):
        failed = json.loads((failure / "02_second.ipynb").read_text())
        assert failed["metadata"]["papermill"]["parameters"]["scale"] == scale
        assert any(
            o.get("ename") == "AssertionError"
            for c in failed["cells"]
            for o in c.get("outputs", [])
        )
    assert not _leftovers(tiny_project / "runs" / "mini")

    seen = {}

    def fake_jupyter_book(command, cwd):
        folder = cwd / "book" / "executed"
        seen["files"] = _files(folder)
        seen["status"] = (folder / STATUS_TABLE).read_text()
        return 0

    monkeypatch.setattr(runner, "_jupyter_book", fake_jupyter_book)
    build_book(root=tiny_project, profile="mini")
    tables = (STATUS_TABLE, TIMES_TABLE)
    assert {k: v for k, v in seen["files"].items() if k not in tables} == before
    second = json.loads(seen["files"]["02_second.ipynb"])["metadata"]["cardioembed"]
    assert second["parameters"] == {"scale": 2}
    assert "`02_second`" in seen["status"]


def test_an_interrupted_run_prints_one_line_and_keeps_the_previous_run(
    tiny_project, monkeypatch, capsys
):
    assert cli.main(["run", "--profile", "mini"]) == 0
    published = tiny_project / "runs" / "mini" / "executed"
    before = _files(published)
    capsys.readouterr()
    real = runner.execute_notebook

    def interrupted_in_02(source, output, params, profile):
        if source.stem == "02_second":
            raise KeyboardInterrupt
        return real(source, output, params, profile)

    monkeypatch.setattr(runner, "execute_notebook", interrupted_in_02)
    assert cli.main(["run", "--profile", "mini", "-p", "words=[z]"]) == 130
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "interrupted while running 02_second (profile mini)" in lines[0]
    assert "nothing was lost" in lines[0] and "Traceback" not in captured.out + captured.err
    assert _files(published) == before  # 01 ran again, but the run was not published
    assert not _leftovers(tiny_project / "runs" / "mini")
    assert not (tiny_project / "runs" / "mini" / "executed-failed").exists()


def test_runner_output_is_one_line_per_notebook_without_kernel_warnings(tiny_project, capfd):
    assert cli.main(["run", "--profile", "mini"]) == 0
    captured = capfd.readouterr()  # file descriptors: the kernel's own output too
    output = captured.out + captured.err
    assert "without encryption" not in output and "[IPKernelApp]" not in output, output
    lines = output.strip().splitlines()
    assert [line.split()[1] for line in lines[:2]] == ["01_first", "02_second"]
    assert lines[2].startswith("2 notebook(s) executed") and len(lines) == 3, output


def test_the_status_page_comes_from_the_run_records(tiny_project):
    run_profile(load_profile("mini"))
    published = tiny_project / "runs" / "mini" / "executed"
    records = {
        path.stem: json.loads(path.read_text())["metadata"]["cardioembed"]
        for path in sorted(published.glob("*.ipynb"))
    }
    page = status_table(records)
    env = records["01_first"]["environment"]
    for value in (env["python"], env["device"], env["packages"]["torch"], env["platform"]):
        assert value in page
    assert (env["git_commit"] or "unknown") in page
    (tiny_project / "bare").mkdir()
    (tiny_project / "bare" / "01_first.ipynb").write_text(
        (tiny_project / "notebooks" / "01_first.ipynb").read_text()
    )
    with pytest.raises(InputError, match="01_first.ipynb carries no run record"):
        build_book(root=tiny_project, executed=tiny_project / "bare")


def test_book_build_names_what_is_missing(tiny_project, capsys):
    with pytest.raises(InputError, match="no successful run to render.*cardioembed run"):
        build_book(root=tiny_project, profile="mini")
    assert cli.main(["book", "--profile", "mini"]) == 2
    assert "no successful run to render" in capsys.readouterr().err
    run_profile(load_profile("mini"), only=["01"])
    toc = tiny_project / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: S\n    chapters:\n"
        "      - file: book/executed/01_first\n      - file: book/executed/02_second\n"
    )
    with pytest.raises(InputError, match="lacks 02_second, which the book's _toc.yml lists"):
        build_book(root=tiny_project, profile="mini")
    assert not (tiny_project / "book" / "executed").exists()  # nothing staged on a refusal


@contextlib.contextmanager
def unwritable(folder):
    """`folder`, read-only for the block. Permissions do not stop root, so as root it is a
    read-only bind mount of itself (the read-only file system of the report); a root that
    may not mount gets a path below a regular file, where nothing can be made either."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
    elif subprocess.run(["mount", "-o", "bind,ro", folder, folder], capture_output=True).returncode:
        (folder / "a-file").write_text("")
        yield folder / "a-file" / "folder"
    else:
        try:
            yield folder
        finally:
            subprocess.run(["umount", folder], check=True)


def test_a_folder_that_cannot_be_written_is_named_before_anything_runs(tiny_project, capsys):
    with unwritable(tiny_project / "read-only") as folder:
        assert cli.main(["run", "--profile", "mini", "-p", f"runs_root={folder}"]) == 2
        err = capsys.readouterr().err
        assert f"{folder / 'mini'} cannot be written" in err and "-p runs_root=" in err
        assert cli.main(["run", "--profile", "mini", "--output-dir", str(folder / "out")]) == 2
        err += capsys.readouterr().err
        assert f"{folder} cannot be written" in err and "--output-dir" in err
    assert "Traceback" not in err and not (tiny_project / "out.json").exists()


def test_the_preflight_says_when_the_hub_is_out_of_reach(tmp_path, monkeypatch, caplog):
    import datasets.config
    import huggingface_hub.constants

    from cardioembed import models
    from cardioembed.book.preflight import preflight

    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # neither asked for nor refused: probed
    for variable in ("TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(models, "_probed", [])
    monkeypatch.setenv(models.PROBED_OFFLINE, "")  # not set: restored as such afterwards
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    caplog.set_level(logging.INFO, logger="cardioembed")
    preflight({}, set(), tmp_path)
    assert "the Hugging Face hub is out of reach" in caplog.text


def test_a_baseline_named_like_one_of_the_studys_models_is_refused(tmp_path):
    """Notebook 05 would score it in place of the base model, or of BM25: refused first."""
    from cardioembed.book.preflight import preflight

    values = {"extra_models": {"base": "minilm", "bm25": "minilm", "MiniLM": "minilm"}}
    with pytest.raises(InputError) as info:
        preflight(values, set(values), tmp_path)
    assert "extra_models names base, bm25: the study's own models" in str(info.value)
    checked = preflight({"extra_models": {"MiniLM": "minilm"}}, {"extra_models"}, tmp_path)
    assert checked["extra_models"] == {"MiniLM": "minilm"}


def test_a_read_only_model_cache_is_a_warning_and_the_run_completes(
    tiny_project, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="cardioembed")
    with unwritable(tiny_project / "cache") as cache:
        monkeypatch.setenv(CACHE_ENV, str(cache))
        assert len(run_profile(load_profile("mini"))) == 2
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"model cache {cache} cannot be written" in warning and CACHE_ENV in warning
    assert os.environ[CACHE_ENV] == str(tiny_project / "runs" / "mini" / "cache")


def _waiting_notebook(project):
    """A third notebook that runs until the file `release` appears."""
    _notebook(
        project / "notebooks" / "03_wait.ipynb",
        "scale: int = 1  # a factor",
        "import pathlib, time\nwhile not pathlib.Path('../release').exists():\n    time.sleep(0.1)",
    )


def test_two_runs_of_one_profile_one_waits_or_fails_naming_the_other(tiny_project, caplog):
    _waiting_notebook(tiny_project)
    lock = tiny_project / "runs" / "mini" / runner.LOCK
    first = subprocess.Popen(
        [sys.executable, "-m", "cardioembed.cli", "run", "--profile", "mini", "--only", "03"]
    )
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(InputError, match=f"in use by the run of process {first.pid}, start"):
            run_profile(load_profile("mini"), only=["01"], wait=False)
        caplog.set_level(logging.INFO, logger="cardioembed")
        threading.Timer(3, (tiny_project / "release").write_text, [""]).start()
        run_profile(load_profile("mini"), only=["01"])  # waits for the first, then runs
        assert (
            f"in use by the run of process {first.pid}" in caplog.text and "waiting" in caplog.text
        )
        assert first.wait(60) == 0  # the first run's results are intact: both published
    finally:
        first.kill()
    published = sorted(p.name for p in (tiny_project / "runs" / "mini" / "executed").iterdir())
    assert published == ["01_first.ipynb", "03_wait.ipynb"] and lock.read_text() == ""


def test_the_lock_left_by_a_killed_run_is_taken_over(tiny_project, caplog):
    caplog.set_level(logging.INFO, logger="cardioembed")
    lock = tiny_project / "runs" / "mini" / runner.LOCK
    lock.parent.mkdir(parents=True)
    lock.write_text('{"pid": 99999999, "started": "2025-01-01 10:00:00", "command": "x"}')
    run_profile(load_profile("mini"), only=["02"], wait=False)
    assert "process 99999999, started 2025-01-01 10:00:00" in caplog.text
    assert "ended without releasing" in caplog.text


def test_skipped_inputs_are_listed_under_the_notebooks_line(tiny_project, capsys):
    # A stand-in for notebook 01: it reads textbooks and writes the corpus' files.csv.
    _notebook(
        tiny_project / "notebooks" / "03_books.ipynb",
        "textbook_dir: str = ''  # a folder of books",
        "import pathlib\ncorpus = pathlib.Path('../runs/mini/corpus')\n"
        "(corpus / 'c1').mkdir(parents=True)\n"
        "(corpus / 'current.json').write_text('{\"corpus\": \"c1\"}')\n"
        "(corpus / 'c1' / 'files.csv').write_text('file,status,pages,reason\\n"
        "a.txt,used,1,\\nb.doc,skipped,0,b.doc: convert it to .txt\\n')",
    )
    assert cli.main(["run", "--profile", "mini", "--only", "03"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/1] 03_books")
    assert lines[1].strip() == "skipped: b.doc: convert it to .txt" and "a.txt" not in lines[2]


def test_ctrl_c_outside_a_run_says_which_command_was_interrupted(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_command", interrupted)
    assert cli.main(["profiles"]) == 130
    assert capsys.readouterr().err.strip() == "cardioembed: profiles interrupted"
