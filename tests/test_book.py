"""The book's sources agree with the project: table of contents, links, quoted facts,
launch buttons. (tests/test_book_browser.py builds and opens the book itself.)"""

import ast
import re
from pathlib import Path

import papermill
import pytest
import yaml

from cardioembed import paper
from cardioembed.book.launch import source_notebook_url
from cardioembed.book.runner import STATUS_TABLE, TIMES_TABLE
from cardioembed.curation import sources
from cardioembed.paths import ROOT_ENV, project_root

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.md"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOK_SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _toc_files():
    return [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]


def _exists(docname: str) -> bool:
    """A chapter is a markdown file of book/, or an executed notebook whose source is in
    notebooks/ (book/executed/ is generated)."""
    path = ROOT / docname
    if path.parent == BOOK / "executed":
        return (ROOT / "notebooks" / f"{path.name}.ipynb").is_file()
    return path.with_suffix(".md").is_file()


def test_toc_has_the_books_parts_in_order():
    assert TOC["root"] == "book/intro"
    assert [part["caption"] for part in TOC["parts"]] == [
        "Background",
        "The study",
        "Using the study",
        "Back matter",
    ]
    files = _toc_files()
    assert files[:3] == ["book/intro", "book/paper", "book/method"]
    assert files[-6:] == [
        "book/full_scale",
        "book/teaching",
        "book/data",
        "book/limitations",
        "book/status",
        "book/references",
    ]
    study = [c["file"] for c in TOC["parts"][1]["chapters"]]
    notebooks = sorted(
        f"book/executed/{p.stem}" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    assert study == notebooks + ["book/findings"]  # every notebook, in order, then the findings


def test_every_toc_entry_and_every_markdown_chapter_exists():
    assert all(_exists(f) for f in _toc_files()), [f for f in _toc_files() if not _exists(f)]
    listed = set(_toc_files())
    assert {f"book/{p.stem}" for p in CHAPTERS} <= listed, "a chapter missing from _toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_doc_links_point_to_chapters_of_the_toc(chapter):
    for target in re.findall(r"\{doc\}`([^`<]+)`", chapter.read_text()):
        docname = (chapter.parent / target).resolve().relative_to(ROOT).as_posix()
        assert docname in _toc_files(), f"{chapter.name}: {{doc}}`{target}` is not in the toc"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_citations_are_in_the_bibliography(chapter):
    keys = set(re.findall(r"^@\w+\{([^,]+),", (BOOK / "references.bib").read_text(), re.M))
    for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", chapter.read_text()):
        for key in group.split(","):
            assert key.strip() in keys, f"{chapter.name}: unknown citation {key!r}"


def test_paper_chapter_quotes_the_papers_numbers():
    """The paper's numbers are typed in book/paper.md (a page without a kernel); they must
    be the ones cardioembed/paper.py records."""
    text = (BOOK / "paper.md").read_text()
    for acc1, acc5, mrr in paper.RESULTS.values():
        assert f"{acc1:.2%}" in text and f"{acc5:.2%}" in text and f"{mrr:.4f}" in text
    for value in (*paper.MTEB_PAPER.values(), *paper.MTEB_UNTRAINED_OFFICIAL.values()):
        assert f"{value:.4f}" in text
    for key in ("sentences", "train_triplets", "validation_triplets", "test_triplets"):
        assert f"{paper.CORPUS[key]:,}" in text
    assert f"{paper.RECIPE['training_minutes']}" in text
    assert f"{paper.RECIPE['training_minutes']}" in (BOOK / "full_scale.md").read_text()


def test_data_chapter_carries_the_attribution_of_the_installed_sources():
    text = (BOOK / "data.md").read_text()
    quoted = " ".join(
        line.strip().removeprefix(">").strip()
        for line in text.splitlines()
        if line.strip().startswith(">")
    )
    assert sources.HPO_ATTRIBUTION in re.sub(r"<(https?://[^>]+)>", r"\1", quoted)
    assert sources.hpo_header()["data-version"][0] in text
    icd_file = re.search(r"file (\S+\.xml)", sources.ICD10CM_ATTRIBUTION).group(1)
    assert icd_file in text


def test_teaching_guide_includes_the_generated_times_table():
    assert f"```{{include}} executed/{TIMES_TABLE}\n```" in (BOOK / "teaching.md").read_text()


def test_status_page_includes_the_table_written_at_build_time():
    assert f"```{{include}} executed/{STATUS_TABLE}\n```" in (BOOK / "status.md").read_text()


def test_the_book_and_citation_cff_cite_the_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    # the repository's address has one home, _config.yml; CITATION.cff repeats it, or
    # names none while it is unset
    assert citation.get("repository-code", "") == CONFIG["repository"]["url"]
    assert {"message", "title", "authors"} <= set(citation)
    (paper_ref,) = [r for r in citation["references"] if "CardioEmbed" in r["title"]]
    assert paper_ref["title"] == (
        "CardioEmbed: Domain-Specialized Text Embeddings for Clinical Cardiology"
    )
    assert [a["family-names"] for a in paper_ref["authors"]] == ["Young", "Matthews"]
    assert any(i["value"] == "arXiv:2511.10930" for i in paper_ref["identifiers"])
    intro = (BOOK / "intro.md").read_text()
    assert "## How to cite" in intro and "CITATION.cff" in intro
    assert "arXiv:2511.10930" in intro and "{cite}`young2025cardioembed`" in intro


def test_math_is_served_with_the_book():
    """MathJax comes with the built book (_static/mathjax), not from a CDN."""
    assert "sphinx-mathjax-offline" in CONFIG["sphinx"]["extra_extensions"]
    assert "mathjax_path" not in CONFIG["sphinx"].get("config", {})


def test_intro_and_limitations_say_not_for_clinical_use():
    for name in ("intro", "limitations"):
        text = (BOOK / f"{name}.md").read_text()
        assert re.search(r"```\{(warning|danger)\}", text), name
        assert "clinical" in text


def test_launch_buttons_are_configured_for_the_source_notebooks():
    assert set(CONFIG["repository"]) == {"url", "path_to_book", "branch"}
    assert CONFIG["parse"]["myst_substitutions"]["repository_url"] == CONFIG["repository"]["url"]
    assert CONFIG["launch_buttons"]["binderhub_url"] and CONFIG["launch_buttons"]["colab_url"]
    assert "cardioembed.book.launch" in CONFIG["sphinx"]["extra_extensions"]
    # Binder installs the package from the checkout after creating environment.yml's env.
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()


REPOSITORY_ADDRESS = re.compile(r"https?://(?:www\.)?(?:github|gitlab)\.com/[\w.-]+/[\w.-]+")


def test_no_page_names_a_repository_address_the_configuration_does_not():
    """_config.yml's repository.url is the one home of the address: the pages, the README,
    CITATION.cff and the notebooks may name it and no other (no made-up address)."""
    configured = CONFIG["repository"]["url"].rstrip("/")
    files = [*CHAPTERS, ROOT / "README.md", ROOT / "CITATION.cff", *NOTEBOOK_SOURCES]
    for path in files:
        for address in REPOSITORY_ADDRESS.findall(path.read_text()):
            assert address.rstrip("/").removesuffix(".git") == configured, (path.name, address)
    for name in ("intro.md", "teaching.md"):  # where to get the code, address set or not
        assert "{{ " in (BOOK / name).read_text() and "repository_url" in (BOOK / name).read_text()


KEY_RESULTS_CLAIMS = ("random", "gain over", "domain-specific", "MTEB", "pooling", "temperature")


@pytest.mark.parametrize("chapter", ["findings", "intro"])
def test_the_key_results_table_has_a_row_per_claim_with_a_glued_verdict(chapter):
    text = (BOOK / f"{chapter}.md").read_text()
    header = text.index("| the paper's claim |")
    rows = [line for line in text[header:].split("\n\n")[0].splitlines()[2:]]
    assert len(rows) == len(KEY_RESULTS_CLAIMS)
    for claim, row in zip(KEY_RESULTS_CLAIMS, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert claim in cells[0]
        verdict = cells[-2]  # the last column links the chapter that measured it
        assert re.fullmatch(r"\{glue:text\}`executed/0\d_\w+\.ipynb::\w*verdict:s`", verdict)
        assert cells[-1].startswith("{doc}`executed/0")
        assert all("{glue:text}" in cell for cell in cells[1:-1] if cell != "not separated")


def test_estimates_are_quoted_with_their_interval_and_seeds_or_as_a_dash():
    from cardioembed.book.tables import estimate

    assert estimate(0.0634, 0.026, 0.1, [0.05, 0.071]) == (
        "+0.063 (95% CI +0.026 to +0.100; 2 seeds: +0.050 to +0.071)"
    )
    assert estimate(0.5, 0.4, 0.6, [0.5], sign="") == "0.500 (95% CI 0.400 to 0.600; one seed)"
    assert estimate(float("nan"), float("nan"), float("nan")) == "–"  # an empty transfer table


def test_launch_urls_of_executed_notebooks_point_at_their_sources():
    binder = (
        "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/"
        "./book/executed/01_curate_corpus.ipynb"
    )
    colab = "https://colab.research.google.com/github/o/r/blob/main/book/executed/05_x.ipynb"
    assert source_notebook_url(binder).endswith("lab/tree/notebooks/01_curate_corpus.ipynb")
    assert source_notebook_url(colab).endswith("/blob/main/notebooks/05_x.ipynb")
    other = "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/intro.md"
    assert source_notebook_url(other) == other


NOTEBOOKS = NOTEBOOK_SOURCES


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_runs_without_a_profile(notebook):
    """The launch buttons, Jupyter and plain papermill run a source notebook with no
    profile: every default must be a literal, and the defaults name the teaching profile
    and the repository's own run folder."""

    declared = papermill.inspect_notebook(str(notebook))
    for name, info in declared.items():
        try:
            ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            pytest.fail(
                f"{notebook.name}: the default of {name} is not a literal: {info['default']}"
            )
    assert ast.literal_eval(declared["profile"]["default"]) == "teaching"
    assert ast.literal_eval(declared["runs_root"]["default"]) == ""


@pytest.mark.parametrize("start", [".", "notebooks", "book"])
def test_the_project_root_is_found_from_where_a_notebook_runs(start, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT / start)
    assert project_root() == ROOT


def test_tables_show_counts_as_whole_numbers_and_missing_values_as_a_dash():
    import pandas as pd

    from cardioembed.book.tables import show

    frame = pd.DataFrame(
        {"file": ["a.pdf", "b.epub"], "pages": [1365.0, None], "acc@1": [1.0, 0.5]}
    )
    html = show(frame).to_html()
    assert "1,365<" in html and "1365.0" not in html and "–" in html
    assert "1.000<" in html and "0.500<" in html  # a metric keeps its decimals
    assert "row_heading" not in html  # the plain 0, 1 index is hidden
