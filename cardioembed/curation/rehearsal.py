"""A small cardiology textbook written from the open sources, for rehearsals.

The `paper` profile reads the user's own textbooks; the `rehearsal` profile runs the
same path on a CPU without them. `write_rehearsal_textbooks(folder)` writes a few
chapters of prose made from HPO definitions (cardiovascular subtree) and ICD-10-CM
chapter 9 descriptions as three files, one per format the textbook reader takes: a PDF
(text pages with running headers and page numbers, written by matplotlib), an EPUB (a
zip of container.xml, an OPF package document and XHTML chapters) and a Markdown file.
Extraction and cleaning then run on real files.

The files are written deterministically (no dates inside), so the corpus built from them
is reused by a second run. `textbook_dir: rehearsal` asks `cardioembed run` to write
them into `<runs_root>/<profile>/textbooks/` (once, with `artifacts.atomic_dir`: the
folder exists only complete) and to read them from there.
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


def rehearsal_chapters(n_chapters: int = CHAPTERS_PER_FILE * len(FILES)) -> list[tuple]:
    """(title, paragraphs) of each chapter: HPO branches first, then ICD-10-CM blocks,
    the first `PARAGRAPHS_PER_CHAPTER` items of each in source order."""
    from cardioembed.curation import sources

    chapters: list[tuple[str, list[str]]] = []
    terms = sources.hpo_terms()
    terms = terms[terms["definition"].fillna("").str.len() > 40]
    for _branch, part in terms.groupby("branch_name", sort=True):
        if len(part) >= PARAGRAPHS_PER_CHAPTER:
            rows = part.head(PARAGRAPHS_PER_CHAPTER).itertuples()
            chapters.append((str(_branch), [_hpo_paragraph(t) for t in rows]))
    codes = sources.icd10cm_codes()
    hpo_share = n_chapters // 2
    chapters = chapters[:hpo_share]
    for block, part in codes.groupby("block", sort=True):
        if len(chapters) >= n_chapters:
            break
        if len(part) >= PARAGRAPHS_PER_CHAPTER:
            rows = part.head(PARAGRAPHS_PER_CHAPTER).itertuples()
            chapters.append((f"Diseases coded {block}", [_icd_paragraph(c) for c in rows]))
    return chapters[:n_chapters]


def _write_pdf(path: Path, chapters: list[tuple]) -> None:
    """Text pages with a running header and a page number; one outline-free PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    lines_per_page, width = 40, 88
    pages: list[list[str]] = []
    for title, paragraphs in chapters:
        lines = [f"Chapter {len(pages) + 1}: {title}", ""]
        for paragraph in paragraphs:
            lines += [*textwrap.wrap(paragraph, width), ""]
        for start in range(0, len(lines), lines_per_page):
            pages.append(lines[start : start + lines_per_page])
    with (
        matplotlib.rc_context({"pdf.fonttype": 42}),
        PdfPages(path, metadata={"CreationDate": None, "ModDate": None}) as pdf,
    ):
        for number, lines in enumerate(pages, 1):
            figure = plt.figure(figsize=(8.27, 11.69))
            figure.text(0.08, 0.96, "A Rehearsal Textbook of Cardiology", fontsize=8)
            for row, line in enumerate(lines):
                figure.text(0.08, 0.92 - row * 0.021, line, fontsize=9, family="DejaVu Sans")
            figure.text(0.5, 0.03, str(number), fontsize=8, ha="center")
            pdf.savefig(figure)
            plt.close(figure)


def _zip_write(archive: zipfile.ZipFile, name: str, data: str, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    archive.writestr(info, data.encode())


def _write_epub(path: Path, chapters: list[tuple]) -> None:
    """An EPUB 3: mimetype (first, stored), container.xml, the OPF and one XHTML file
    per chapter in the spine."""
    container = (
        '<?xml version="1.0"?>\n'
        '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>\n'
    )
    items, spine = [], []
    with zipfile.ZipFile(path, "w") as archive:
        _zip_write(archive, "mimetype", "application/epub+zip", stored=True)
        _zip_write(archive, "META-INF/container.xml", container)
        for index, (title, paragraphs) in enumerate(chapters, 1):
            body = "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs)
            _zip_write(
                archive,
                f"OEBPS/chapter{index}.xhtml",
                '<?xml version="1.0" encoding="utf-8"?>\n'
                '<html xmlns="http://www.w3.org/1999/xhtml"><head>'
                f"<title>{escape(title)}</title></head><body>"
                f"<h1>{escape(title)}</h1>\n{body}</body></html>\n",
            )
            items.append(
                f'<item id="c{index}" href="chapter{index}.xhtml" '
                'media-type="application/xhtml+xml"/>'
            )
            spine.append(f'<itemref idref="c{index}"/>')
        _zip_write(
            archive,
            "OEBPS/content.opf",
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:identifier id="id">cardioembed-rehearsal</dc:identifier>'
            "<dc:title>Cardiology for Rehearsals</dc:title><dc:language>en</dc:language>"
            f"</metadata><manifest>{''.join(items)}</manifest>"
            f"<spine>{''.join(spine)}</spine></package>\n",
        )


def _write_markdown(path: Path, chapters: list[tuple]) -> None:
    parts = []
    for title, paragraphs in chapters:
        parts += [f"# {title}", "", *(f"{p}\n" for p in paragraphs)]
    path.write_text("\n".join(parts))


def write_rehearsal_textbooks(folder: str | Path) -> Path:
    """Write the rehearsal textbook (PDF, EPUB, Markdown) into `folder`, once: a folder
    that already holds it is returned as it is."""
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
