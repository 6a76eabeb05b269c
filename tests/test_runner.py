"""The runner on a tiny project of its own: parameters, progress, failures, records."""

import json

import nbformat
import pytest

from cardioembed import cli
from cardioembed.errors import InputError
from cardioembed.profiles import Profile, load_profile, parse_overrides
from cardioembed.runner import (
    TIMES_TABLE,
    NotebookFailed,
    build_book,
    run_profile,
    source_notebooks,
    times_table,
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
        "profile = 'teaching'  # profile name\nscale = 1  # a factor\nwords = ['x']  # some words",
        "import pathlib\npathlib.Path('../out.json').write_text("
        "__import__('json').dumps({'profile': profile, 'scale': scale, 'words': words}))",
    )
    _notebook(
        notebooks / "02_second.ipynb",
        "scale = 1  # a factor",
        "value = scale * 10\nassert value < 50, 'scale too large'",
    )
    monkeypatch.setenv("CARDIOEMBED_ROOT", str(tmp_path))
    return tmp_path


def test_profile_values_and_overrides_reach_the_notebooks(tiny_project):
    lines = []
    profile = load_profile("mini").with_overrides({"words": ["c"]})
    results = run_profile(profile, output_dir=tiny_project / "executed", echo=lines.append)
    assert [r.name for r in results] == ["01_first", "02_second"]
    assert json.loads((tiny_project / "out.json").read_text()) == {
        "profile": "mini",
        "scale": 2,
        "words": ["c"],
    }
    assert sum("done in" in line for line in lines) == 2  # one progress line per notebook
    executed = json.loads((tiny_project / "executed" / "01_first.ipynb").read_text())
    record = executed["metadata"]["cardioembed"]
    assert record["profile"] == "mini" and record["parameters"]["scale"] == 2
    assert "torch" in record["environment"]["packages"]
    times = json.loads((tiny_project / "runs" / "mini" / "notebook_times.json").read_text())
    assert set(times) == {"01_first", "02_second"}


def test_run_writes_the_times_table_from_the_run_records(tiny_project):
    profile = load_profile("mini")
    run_profile(profile, only=["01"], output_dir=tiny_project / "executed", echo=lambda _: None)
    run_profile(profile, only=["02"], output_dir=tiny_project / "executed", echo=lambda _: None)
    records = json.loads((tiny_project / "runs" / "mini" / "notebook_times.json").read_text())
    table = (tiny_project / "executed" / TIMES_TABLE).read_text()
    # Both notebooks, although the last run executed only one: the table is the records'.
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["01_first", "02_second"]
    for row, name in zip(rows, ["01_first", "02_second"], strict=False):
        assert f"{records[name]['seconds']:.1f} s" in row
    assert "Profile `mini`" in table and records["01_first"]["platform"] in table
    assert not [p for p in (tiny_project / "executed").iterdir() if p.name.startswith(".")]


def test_times_table_formats_durations_and_the_machine():
    log = {
        "02_b": {"seconds": 75.5, "finished_at": "2026-01-02T03:04:05+0000", "cpu_count": 8},
        "01_a": {"seconds": 9.96, "finished_at": "2026-01-02T03:00:00+0000", "cpu_count": 8},
    }
    machine = {"cpu_count": 8, "platform": "Linux-x86_64", "device": "cpu", "torch_threads": 8}
    assert times_table("teaching", log, machine).splitlines() == [
        "Profile `teaching`; the latest run of each notebook, as recorded by `cardioembed run`. "
        "The machine of the latest run: 8 CPU cores, Linux-x86_64, device cpu, 8 torch threads.",
        "",
        "| notebook | time | finished | CPU cores |",
        "| --- | ---: | --- | ---: |",
        "| `01_a` | 10.0 s | 2026-01-02 03:00 | 8 |",
        "| `02_b` | 1 min 16 s | 2026-01-02 03:04 | 8 |",
        "| total | 1 min 25 s | | |",
    ]


def test_failure_names_the_notebook_and_the_cell(tiny_project):
    profile = Profile("mini", {"profile": "mini", "scale": 9})
    with pytest.raises(
        NotebookFailed,
        match=(
            r"02_second.ipynb failed in the cell with execution count 3 "
            r"\(starting `value = scale \* 10`\): AssertionError: scale too large"
        ),
    ):
        run_profile(profile, output_dir=tiny_project / "executed", echo=lambda _: None)


def test_only_selects_by_number_or_name(tiny_project):
    assert [p.stem for p in source_notebooks(tiny_project, ["2"])] == ["02_second"]
    assert [p.stem for p in source_notebooks(tiny_project, ["01_first"])] == ["01_first"]
    with pytest.raises(InputError, match="matches no notebook"):
        source_notebooks(tiny_project, ["07"])


def test_unknown_parameter_is_refused_by_name(tiny_project):
    profile = load_profile("mini").with_overrides({"scael": 3})
    with pytest.raises(InputError, match="scael"):
        run_profile(profile, output_dir=tiny_project / "executed", echo=lambda _: None)


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


def test_book_build_asks_for_a_rerun_when_the_times_table_is_missing(tiny_project):
    run_profile(
        load_profile("mini"),
        only=["01"],
        output_dir=tiny_project / "book" / "executed",
        echo=lambda _: None,
    )
    (tiny_project / "book" / "executed" / TIMES_TABLE).unlink()
    with pytest.raises(InputError, match=f"no {TIMES_TABLE} in .*run `cardioembed run` again"):
        build_book(root=tiny_project)
