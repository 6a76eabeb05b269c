"""A small cardiology textbook from HPO and ICD-10-CM, written deterministically as a
PDF, an EPUB and a Markdown file, so that the `rehearsal` profile (`textbook_dir:
rehearsal`) runs the paper's textbook path on a CPU without the user's books.
"""

from __future__ import annotations

import textwrap
import zipfile
from html import escape
from pathlib import Path

from cardioembed.artifacts import atomic_dir

# The `textbook_dir` value that asks for this textbook instead of a folder.
REHEARSAL = "rehearsal"
CHAPTERS_PER_FILE = 2
PARAGRAPHS_PER_CHAPTER = 12
FILES = ("cardiology-rehearsal.pdf", "cardiology-rehearsal.epub", "cardiology-rehearsal.md")


def _hpo_paragraph(term) -> str:
    text = f"{term.definition.strip().rstrip('.')}. Clinicians call this finding {term.name}."
    synonyms = [s for s in term.synonyms if s.lower() != term.name.lower()][:2]
    if synonyms:
        text += f" It is also described as {' or '.join(synonyms)}."
    return text


def _icd_paragraph(code) -> str:
    text = (
        f"The condition {code.description} is recorded under code {code.code} "
        f"of the ICD-10-CM tabular list, in block {code.block}."
    )
    terms = [*code.inclusion_terms, *code.includes][:2]
    if terms:
        text += f" The code covers {' and '.join(t.rstrip('.') for t in terms)}."
    return text


def rehearsal_chapters() -> list[tuple[str, list[str]]]:
    """(title, paragraphs) of each chapter: HPO branches, then ICD-10-CM blocks."""
    from cardioembed.curation import sources

    n_chapters, size = CHAPTERS_PER_FILE * len(FILES), PARAGRAPHS_PER_CHAPTER
    terms = sources.hpo_terms()
    terms = terms[terms["definition"].fillna("").str.len() > 40]
    chapters = [
        (str(branch), [_hpo_paragraph(t) for t in part.head(size).itertuples()])
        for branch, part in terms.groupby("branch_name", sort=True)
        if len(part) >= size
    ][: n_chapters // 2]
    chapters += [
        (f"Diseases coded {block}", [_icd_paragraph(c) for c in part.head(size).itertuples()])
        for block, part in sources.icd10cm_codes().groupby("block", sort=True)
        if len(part) >= size
    ]
    return chapters[:n_chapters]


def _write_pdf(path: Path, chapters: list[tuple]) -> None:
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    lines_per_page, width = 40, 88
    pages: list[list[str]] = []
    for number, (title, paragraphs) in enumerate(chapters, 1):
        lines = [f"Chapter {number}: {title}", ""]
        for paragraph in paragraphs:
            lines += [*textwrap.wrap(paragraph, width), ""]
        for start in range(0, len(lines), lines_per_page):
            pages.append(lines[start : start + lines_per_page])
    with (
        matplotlib.rc_context({"pdf.fonttype": 42}),
        PdfPages(path, metadata={"CreationDate": None, "ModDate": None}) as pdf,
    ):
        for number, lines in enumerate(pages, 1):
            figure = Figure(figsize=(8.27, 11.69))  # not pyplot's: no backend is chosen
            figure.text(0.08, 0.96, "A Rehearsal Textbook of Cardiology", fontsize=8)
            for row, line in enumerate(lines):
                figure.text(0.08, 0.92 - row * 0.021, line, fontsize=9, family="DejaVu Sans")
            figure.text(0.5, 0.03, str(number), fontsize=8, ha="center")
            pdf.savefig(figure)


def _write_epub(path: Path, chapters: list[tuple]) -> None:
    """An EPUB 3: mimetype (first, stored), container.xml, a page per chapter, the OPF."""
    xml = '<?xml version="1.0" encoding="utf-8"?>\n'
    files = {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": '<?xml version="1.0"?>\n'
        '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>\n',
    }
    items = spine = ""
    for i, (title, paragraphs) in enumerate(chapters, 1):
        body = "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs)
        files[f"OEBPS/chapter{i}.xhtml"] = (
            f'{xml}<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{escape(title)}'
            f"</title></head><body><h1>{escape(title)}</h1>\n{body}</body></html>\n"
        )
        items += f'<item id="c{i}" href="chapter{i}.xhtml" media-type="application/xhtml+xml"/>'
        spine += f'<itemref idref="c{i}"/>'
    files["OEBPS/content.opf"] = (
        f'{xml}<package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:identifier id="id">cardioembed-rehearsal</dc:identifier>'
        "<dc:title>Cardiology for Rehearsals</dc:title><dc:language>en</dc:language>"
        f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>\n"
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(info, data.encode())


def _write_markdown(path: Path, chapters: list[tuple]) -> None:
    parts = []
    for title, paragraphs in chapters:
        parts += [f"# {title}", "", *(f"{p}\n" for p in paragraphs)]
    path.write_text("\n".join(parts))


def write_rehearsal_textbooks(folder: str | Path) -> Path:
    """Write the rehearsal textbook into `folder` once; a folder holding it is kept."""
    folder = Path(folder)
    if all((folder / name).is_file() for name in FILES):
        return folder
    chapters = rehearsal_chapters()
    writers = (_write_pdf, _write_epub, _write_markdown)
    with atomic_dir(folder) as tmp:
        for index, (name, write) in enumerate(zip(FILES, writers, strict=True)):
            part = chapters[index * CHAPTERS_PER_FILE : (index + 1) * CHAPTERS_PER_FILE]
            write(tmp / name, part)
    return folder
