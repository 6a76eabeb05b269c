"""Reading textbooks from a folder: PDF, EPUB, text and Markdown, and the bad files."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from cardioembed.curation.sentences import split_sentences
from textbook_reader import Book, Problem, ReaderError, read_book, read_folder

PARAGRAPH = (
    "Heart failure is a clinical syndrome in which the heart cannot pump enough blood. "
    "Patients present with dyspnoea, fatigue and ankle swelling. "
    "Treatment with a beta-blocker, e.g. bisoprolol, lowers mortality."
)


# ------------------------------------------------------------------ file writers

HEADER = "Clinical Cardiology"


def line(x: float, y: float, text: str, size: float = 10, style: str = "") -> tuple:
    """One line set at (x, baseline y), y from the top of an A4 page, in points."""
    return (x, y, text, size, style, 0)


def justified(x: float, y: float, width: float, text: str) -> tuple:
    """One line stretched to `width`, as a typesetter sets all lines of a paragraph
    but its last."""
    return (x, y, text, 10, "", width)


def write_pdf(path: Path, pages: list[list[tuple]], running: bool = False) -> Path:
    """A PDF typeset with fpdf2: each page a list of `line`s (Helvetica; bold, or Courier
    for style "mono"); a page without lines gets a filled rectangle only (no text layer,
    like a scanned page). `running`: a running head and a page number on every page."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_auto_page_break(False)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        if not lines:
            pdf.rect(72, 72, 400, 600, style="F")
        if running and lines:
            lines = [line(72, 40, HEADER, 9), *lines, line(290, 800, str(number), 9)]
        for x, y, text, size, style, width in lines:
            family = "Courier" if style == "mono" else "Helvetica"
            pdf.set_font(family, "B" if style == "bold" else "", size)
            if width:
                pdf.set_char_spacing((width - pdf.get_string_width(text)) / (len(text) - 1))
            pdf.text(x, y, text)
            pdf.set_char_spacing(0)
    pdf.output(str(path))
    return path


def paragraph(x: float, y: float, width: float, lines: list[str]) -> list[tuple]:
    """A paragraph's lines, 12 points apart, all but the last justified to `width`."""
    return [
        justified(x, y + 12 * i, width, text) if i < len(lines) - 1 else line(x, y + 12 * i, text)
        for i, text in enumerate(lines)
    ]


def sentences_of(book: Book) -> list[str]:
    return split_sentences("\n\n".join(book.chapters), 20)


def write_epub(path: Path, chapters: list[tuple[str, str]] | None = None) -> Path:
    """An EPUB 3 written with zipfile: a nav document, chapters in reading order, and
    manifest links that carry #fragments (two items point into the same file)."""
    chapters = chapters or [
        ("Heart failure", f"<p>{PARAGRAPH}</p>"),
        (
            "Atrial fibrillation",
            "<p>Atrial fibrillation is the commonest arrhythmia<a href='#r1'>12</a>. "
            "Anticoagulation prevents stroke in most patients.</p>",
        ),
    ]
    files = {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": (
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>'
        ),
        "OEBPS/nav.xhtml": (
            "<html><body><nav><ol><li><a href='text/ch0.xhtml'>Contents entry that is not "
            "prose and must not be read.</a></li></ol></nav></body></html>"
        ),
    }
    items = [
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    ]
    spine = ['<itemref idref="nav"/>']
    for i, (heading, body) in enumerate(chapters):
        files[f"OEBPS/text/ch{i}.xhtml"] = (
            f"<html><body><h1 id='start'>{heading}</h1>{body}"
            "<h2 id='refs'>References</h2><ol><li>Smith J, et al. Trial. Lancet "
            "2019;393:1-9.</li></ol></body></html>"
        )
        for part in ("start", "refs"):
            items.append(
                f'<item id="c{i}{part}" href="text/ch{i}.xhtml#{part}" '
                'media-type="application/xhtml+xml"/>'
            )
            spine.append(f'<itemref idref="c{i}{part}"/>')
    files["OEBPS/content.opf"] = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>Clinical Cardiology</dc:title><dc:language>en</dc:language></metadata>"
        f"<manifest>{''.join(items)}</manifest><spine>{''.join(spine)}</spine></package>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


# ---------------------------------------------------------------------------- PDF


def test_pdf_pages_are_read_into_chapters(tmp_path, monkeypatch):
    import textbook_reader.books as textbooks

    monkeypatch.setattr(textbooks, "PAGES_PER_CHUNK", 2)
    pages = [
        paragraph(72, 100, 451, [f"Disease of the {valve} valve is discussed on this page."])
        for valve in ["mitral", "aortic", "tricuspid", "pulmonary"]
    ]
    book = read_book(write_pdf(tmp_path / "cardiology.pdf", pages))
    assert isinstance(book, Book)
    assert book.pages == 4
    assert book.chapters == (  # four pages in chunks of two
        "Disease of the mitral valve is discussed on this page.\n\n"
        "Disease of the aortic valve is discussed on this page.",
        "Disease of the tricuspid valve is discussed on this page.\n\n"
        "Disease of the pulmonary valve is discussed on this page.",
    )


def test_corrupt_pdf_is_a_reader_error(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n garbage \x00\xff")
    with pytest.raises(ReaderError, match=r"broken\.pdf could not be read as a PDF") as info:
        read_book(bad)
    assert "re-export" in str(info.value)


def test_pdf_without_text_layer_says_run_ocr(tmp_path):
    pdf = write_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(ReaderError, match=r"no PDF text could be extracted from scan\.pdf"):
        read_book(pdf)


# ------------------------------------------------------- PDF layout: the hard cases

LEFT = [
    "Atrial fibrillation is the most common sustained arrhythmia in adults, and its",
    "prevalence rises steeply with age. Stroke prevention comes first in every patient",
    "with risk factors, and the choice of anticoagulant follows the renal function of",
]
RIGHT = [
    "the patient. Rate control uses beta-blockers or calcium channel blockers, while",
    "rhythm control relies on ablation or on antiarrhythmic drugs.",
]
SECOND = [
    "Heart failure is a clinical syndrome in which the heart cannot pump enough blood",
    "for the needs of the body, and patients present with dyspnoea and fatigue.",
]


def _halves(lines: list[str]) -> list[str]:
    """Each line cut in two at a space near its middle: the lines of a narrow column."""
    out = []
    for text in lines:
        cut = text.index(" ", len(text) // 2)
        out += [text[:cut], text[cut + 1 :]]
    return out


def test_two_columns_are_read_left_then_right_and_a_paragraph_runs_over(tmp_path):
    # The left column is full to its foot: its paragraph goes on at the right's head.
    left = [justified(60, 100 + 12 * i, 230, text) for i, text in enumerate(_halves(LEFT))]
    right = paragraph(320, 100, 230, _halves(RIGHT)) + paragraph(320, 160, 230, _halves(SECOND))
    book = read_book(write_pdf(tmp_path / "two-columns.pdf", [left + right]))
    assert sentences_of(book) == [
        "Atrial fibrillation is the most common sustained arrhythmia in adults, and its "
        "prevalence rises steeply with age.",
        "Stroke prevention comes first in every patient with risk factors, and the choice of "
        "anticoagulant follows the renal function of the patient.",
        "Rate control uses beta-blockers or calcium channel blockers, while rhythm control "
        "relies on ablation or on antiarrhythmic drugs.",
        "Heart failure is a clinical syndrome in which the heart cannot pump enough blood for "
        "the needs of the body, and patients present with dyspnoea and fatigue.",
    ]


def test_paragraph_over_a_page_break_with_running_head_and_foot_and_hyphenation(tmp_path):
    first = paragraph(72, 100, 451, SECOND) + [
        justified(72, 140, 451, "Echocardiography shows the size of the ventricles and the state"),
        justified(72, 152, 451, "of the valves, and it measures the ejection fraction of the myo-"),
    ]
    second = [
        justified(72, 100, 451, "cardium, which guides the treatment: a reduced fraction calls"),
        line(72, 112, "for a beta-blocker and an inhibitor of the renin system."),
    ]
    third = paragraph(72, 100, 451, ["Patients are followed up every six months in the clinic."])
    book = read_book(write_pdf(tmp_path / "book.pdf", [first, second, third], running=True))
    assert sentences_of(book) == [
        " ".join(SECOND),
        "Echocardiography shows the size of the ventricles and the state of the valves, and it "
        "measures the ejection fraction of the myocardium, which guides the treatment: a "
        "reduced fraction calls for a beta-blocker and an inhibitor of the renin system.",
        "Patients are followed up every six months in the clinic.",
    ]
    assert book.dropped["running_lines"] == 6  # a head and a page number on each page
    assert HEADER in book.examples["running_lines"]


def test_heading_in_a_larger_font_is_dropped(tmp_path):
    page = [line(72, 80, "Heart Failure", 16, "bold"), *paragraph(72, 110, 451, SECOND)]
    page += [line(72, 160, "Diagnosis", 13), *paragraph(72, 185, 451, LEFT[:1] + ["today."])]
    book = read_book(write_pdf(tmp_path / "headings.pdf", [page]))
    assert sentences_of(book) == [" ".join(SECOND), " ".join([LEFT[0], "today."])]
    assert book.dropped["headings"] == 2
    assert book.examples["headings"] == ("Heart Failure", "Diagnosis")


def test_parameter_reference_entry_keeps_only_its_description(tmp_path):
    page = [
        line(72, 80, "section.autolabel", 14, "bold"),
        line(72, 105, "Name", 12, "bold"),
        line(72, 125, "section.autolabel - Are sections enumerated?"),
        line(72, 150, "Synopsis", 12, "bold"),
        line(90, 170, '<xsl:param name="section.autolabel" select="0"/>', 10, "mono"),
        line(72, 195, "Description", 12, "bold"),
        *paragraph(
            72,
            215,
            451,
            [
                "If true (non-zero), unlabelled sections are enumerated in the output. The",
                "number format depends on the value of the depth parameter given next.",
            ],
        ),
    ]
    book = read_book(write_pdf(tmp_path / "reference.pdf", [page]))
    assert sentences_of(book) == [
        "If true (non-zero), unlabelled sections are enumerated in the output.",
        "The number format depends on the value of the depth parameter given next.",
    ]
    assert book.dropped["headings"] == 4
    assert book.dropped["code"] == 1
    assert book.dropped["fragments"] == 1  # the name and its purpose: no sentence


def test_table_rows_are_dropped_and_the_prose_around_them_kept(tmp_path):
    rows = [("Drug", "Dose", "Route"), ("Bisoprolol", "1.25 mg daily", "oral")]
    rows += [("Furosemide", "40 mg.", "intravenous"), ("Digoxin", "62.5 µg.", "oral")]
    table = [
        line(x, 150 + 12 * i, cell)
        for i, row in enumerate(rows)
        for x, cell in zip((72, 220, 380), row, strict=True)
    ]
    page = paragraph(72, 100, 451, SECOND) + table
    page += paragraph(72, 220, 451, ["The doses are those of the first week of treatment."])
    book = read_book(write_pdf(tmp_path / "table.pdf", [page]))
    assert sentences_of(book) == [
        " ".join(SECOND),
        "The doses are those of the first week of treatment.",
    ]
    assert book.dropped["tables"] == 1


# --------------------------------------------------------------------------- EPUB


def test_epub_is_read_in_reading_order(tmp_path):
    book = read_book(write_epub(tmp_path / "cardio.epub"))
    assert len(book.chapters) == 2
    first, second = book.chapters  # two manifest links into each file: read once
    assert first.startswith("Heart failure is a clinical syndrome")  # heading dropped
    assert "Contents entry" not in first + second  # the nav document is not prose
    assert "e.g. bisoprolol" in first
    assert "Smith J" not in first + second  # reference lists dropped
    assert "commonest arrhythmia." in second  # citation link "12" dropped


def test_corrupt_epub_is_a_reader_error(tmp_path):
    bad = tmp_path / "broken.epub"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ReaderError, match=r"broken\.epub could not be read as an EPUB"):
        read_book(bad)


# ------------------------------------------------------------------ text, Markdown


def test_text_file_split_into_chapters(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(f"Chapter 1 Failure\n\n{PARAGRAPH}\n\nChapter 2 Rhythm\n\n{PARAGRAPH}\n")
    book = read_book(path)
    assert len(book.chapters) == 2
    assert book.chapters[1].startswith("Heart failure is a clinical syndrome")
    assert "Chapter 2 Rhythm" not in book.chapters[1]  # headings are not sentences
    assert book.dropped["headings"] == 2


def test_utf8_with_bom_and_utf16_are_read(tmp_path):
    text = f"Dose 5 µg/kg at 37 °C; β-blockers. {PARAGRAPH}"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(text.encode("utf-8-sig"))
    wide = tmp_path / "wide.txt"
    wide.write_bytes(text.encode("utf-16"))
    for path in (bom, wide):
        chapter = read_book(path).chapters[0]
        assert chapter.startswith("Dose 5 μg/kg at 37 °C; β-blockers.")  # NFKC: µ -> μ


def test_markdown_keeps_prose_paragraphs_and_drops_other_elements(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "# Heart failure\n\n"
        "**Heart failure** is a *clinical* syndrome; see [the guideline](http://x.org).\n\n"
        "```python\nprint('code is not prose')\n```\n\n"
        "- Loop diuretics relieve `congestion`.\n- Thiazides add to them.\n\n"
        "| drug | dose |\n| --- | --- |\n| bisoprolol | 5 mg |\n| ramipril | 10 mg |\n\n"
        "# Valve disease\n\n"
        "![echo](echo.png)\n"
        "> Aortic stenosis is common in the elderly.\n"
    )
    book = read_book(path)
    assert book.chapters == (
        "Heart failure is a clinical syndrome; see the guideline.",
        "Aortic stenosis is common in the elderly.",
    )
    # each list and table counted once, whatever its items or rows
    assert book.dropped == {"code": 1, "headings": 2, "lists": 1, "tables": 1}
    assert book.examples["lists"] == ("Loop diuretics relieve congestion. Thiazides add to them.",)


def test_non_utf8_text_names_file_offset_and_fix(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 au lait spots; 5 \u00b5g dose.".encode("latin-1"))
    with pytest.raises(ReaderError) as info:
        read_book(path)
    message = str(info.value)
    assert "latin.txt is not UTF-8" in message
    assert "byte offset 3" in message and "0xe9" in message
    assert "iconv" in message


def test_binary_file_named_txt(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(ReaderError, match=r"image\.txt contains NUL bytes"):
        read_book(path)
    renamed = tmp_path / "paper.txt"
    renamed.write_bytes(b"%PDF-1.4\n...")
    with pytest.raises(ReaderError, match=r"paper\.txt is a PDF file"):
        read_book(renamed)


def test_empty_and_unsupported_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match=r"empty\.txt is empty"):
        read_book(empty)
    doc = tmp_path / "notes.docx"
    doc.write_bytes(b"PK")
    with pytest.raises(ReaderError, match=r"notes\.docx has an unsupported extension"):
        read_book(doc)


def test_fifty_megabyte_single_line_is_broken_into_passages(tmp_path):
    sentence = b"The left ventricle ejects blood into the aorta during systole. "
    path = tmp_path / "oneline.txt"
    repeats = 50 * 2**20 // len(sentence)
    path.write_bytes(sentence * repeats)
    assert path.stat().st_size > 49 * 2**20
    book = read_book(path)  # its speed is measured by benchmarks/textbooks.py
    (chapter,) = book.chapters
    # Re-broken into passages of about 2,000 characters, none of the text lost.
    assert chapter.count("\n\n") > 20_000
    assert chapter.count("systole.") == repeats
    assert split_sentences(chapter[:100_000], 20)[0] == sentence.decode().strip()


# ------------------------------------------------------------------------- folder


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(ReaderError, match="does not exist"):
        read_folder(tmp_path / "nowhere")
    file = tmp_path / "a.txt"
    file.write_text(PARAGRAPH)
    with pytest.raises(ReaderError, match="is not a folder"):
        read_folder(file)


def test_empty_folder_names_folder_and_extensions(tmp_path):
    (tmp_path / "readme.docx").write_bytes(b"PK")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    with pytest.raises(ReaderError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert ".pdf" in message and ".epub" in message and ".txt" in message and ".md" in message


def test_folder_with_only_bad_files_lists_problems(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ReaderError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert "no usable textbook" in message
    assert "broken.pdf" in message and "latin.txt" in message


def test_mixed_folder_keeps_good_files_and_reports_bad_ones(tmp_path):
    write_pdf(tmp_path / "good.pdf", [paragraph(72, 100, 451, _wrap(PARAGRAPH, 90))])
    write_epub(tmp_path / "good.epub")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.md").write_text(f"# Notes\n\n{PARAGRAPH}\n")
    (tmp_path / "good.txt").write_text(PARAGRAPH)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    write_pdf(tmp_path / "scan.pdf", [[]])
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 au lait")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    books, problems = read_folder(tmp_path)
    assert sorted(b.path.name for b in books) == ["good.epub", "good.md", "good.pdf", "good.txt"]
    assert all(isinstance(p, Problem) for p in problems)
    by_name = {p.path.name: p.message for p in problems}
    assert set(by_name) == {"broken.pdf", "scan.pdf", "latin.txt", "binary.txt", "slides.pptx"}
    for name, message in by_name.items():
        assert name in message
    assert "OCR" in by_name["scan.pdf"]


# ----------------------------------------------------------------- real-book layout

PROSE = (
    "This document can be used according to the terms of the GNU General Public License, "
    "and the examples below show how a patient registry is summarised before the analysis "
    "starts. Every variable is checked for missing values, and the ejection fraction is "
    "compared between the two groups of patients. A clear summary helps the reader to "
    "follow the argument of each chapter of the manual."
)
CODE = [
    "> registry <- read.csv('registry.csv')",
    "> fit <- lm(ef ~ age + sex + nyha, data = registry); summary(fit)",
]


def _wrap(text: str, width: int = 70) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def test_real_book_layout_keeps_sentences_and_drops_what_is_not_prose(tmp_path):
    contents = [line(72, 80, "Contents", 16, "bold")] + [
        line(72, 110 + 14 * i, f"{n}.{k} Section about topic {n}{k} " + ". " * 20 + f"{10 * n + k}")
        for i, (n, k) in enumerate((n, k) for n in range(1, 4) for k in range(1, 4))
    ]
    studies = [("registry", "trial"), ("cohort", "survey"), ("audit", "database")]
    body = []
    for first, second in studies:
        page = paragraph(72, 100, 451, _wrap(PROSE.replace("registry", first), 90))
        page += [line(90, 200 + 12 * i, code, 9, "mono") for i, code in enumerate(CODE)]
        page += paragraph(72, 250, 451, _wrap(PROSE.replace("registry", second), 90))
        body.append(page)
    terms = ["ablation", "amiodarone", "aortic stenosis", "apixaban", "atrial flutter", "atropine"]
    index = [line(72, 80, "Index", 16, "bold")] + [
        line(72, 110 + 14 * i, f"{term}, {i + 3}, {i + 16}, {i + 43}-{i + 45}")
        for i, term in enumerate(terms)
    ]
    pdf = write_pdf(tmp_path / "manual.pdf", [contents, *body, index, []])
    book = read_book(pdf)
    text = "\n\n".join(book.chapters)
    sentences = split_sentences(text, 20)
    assert sum("examples below show how a patient" in s for s in sentences) == 6
    assert "The ejection fraction is compared" not in text
    assert PROSE.split(". ")[1].replace("registry", "trial") + "." in sentences
    assert "<-" not in text and "summary(fit)" not in text  # code
    assert "Section about topic" not in text  # contents page
    assert "amiodarone" not in text  # index page
    assert book.pages == 6
    assert book.dropped["contents_index"] == 2
    assert book.dropped["code"] == 6  # each short line of code ends its block
    assert book.dropped["blank_pages"] == 1
    assert book.warnings == ()  # one blank page in six is no reason to warn


def test_mostly_blank_pdf_is_read_with_a_warning_that_says_run_ocr(tmp_path, caplog):
    write_pdf(tmp_path / "scanned.pdf", [paragraph(72, 100, 451, _wrap(PROSE, 90)), [], [], []])
    books, problems = read_folder(tmp_path)
    assert [b.path.name for b in books] == ["scanned.pdf"]
    (problem,) = problems
    assert problem.kind == "degraded"
    assert "3 of 4 pages have no text layer" in problem.message and "OCR" in problem.message
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("read with text lost: scanned.pdf: 3 of 4 pages") for w in warnings)
    with pytest.raises(ReaderError, match=r"(?s)strict mode.*scanned\.pdf.*strict=False"):
        read_folder(tmp_path, strict=True)


def test_a_page_that_cannot_be_decoded_is_named_apart_from_scanned_pages(tmp_path, monkeypatch):
    """A damaged page is not a scanned one: the file is kept with the others' text and a
    warning that counts the pages lost and says to re-export, not to run OCR."""
    import textbook_reader.books as textbooks

    pages = [paragraph(72, 100, 451, [f"Page {n} tells of the mitral valve."]) for n in "123"]
    write_pdf(tmp_path / "damaged.pdf", pages)
    decode = textbooks._pdf_lines

    def second_page_fails(textpage, index, *args):
        if index == 1:
            raise ValueError("a damaged content stream")
        return decode(textpage, index, *args)

    monkeypatch.setattr(textbooks, "_pdf_lines", second_page_fails)
    books, problems = read_folder(tmp_path)
    assert "Page 2" not in " ".join(books[0].chapters) and "Page 3" in " ".join(books[0].chapters)
    (problem,) = problems
    assert problem.kind == "degraded"
    assert "1 of 3 pages could not be decoded" in problem.message
    assert "re-export" in problem.message and "OCR" not in problem.message


def test_epub_with_a_missing_document_is_read_with_a_warning(tmp_path):
    path = write_epub(tmp_path / "short.epub")
    damaged = tmp_path / "damaged.epub"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            if not item.filename.endswith("ch1.xhtml"):
                target.writestr(item, source.read(item))
    book = read_book(damaged)
    assert len(book.chapters) == 1
    assert "missing" in book.warnings[0] and "OEBPS/text/ch1.xhtml" in book.warnings[0]


def test_every_skipped_file_is_reported_with_what_to_do_and_strict_fails(tmp_path, caplog):
    write_pdf(tmp_path / "good.pdf", [paragraph(72, 100, 451, _wrap(PROSE, 90))])
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF")
    (tmp_path / "latin.txt").write_bytes("Caf\u00e9 au lait spots are seen.".encode("latin-1"))
    caplog.set_level(logging.INFO)
    books, problems = read_folder(tmp_path)
    assert [b.path.name for b in books] == ["good.pdf"]
    lines = [r.getMessage() for r in caplog.records]
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 2
    assert any(
        "corrupt.pdf could not be read as a PDF" in line and "re-export" in line for line in skipped
    )
    assert any("latin.txt is not UTF-8" in line and "iconv" in line for line in skipped)
    assert {p.kind for p in problems} == {"skipped"}
    # progress: one line per file, even with nothing wrong
    assert any("reading textbook 1 of 3: corrupt.pdf" in line for line in lines)
    with pytest.raises(ReaderError) as info:
        read_folder(tmp_path, strict=True)
    message = str(info.value)
    assert "strict mode: 2 file(s)" in message
    assert "corrupt.pdf" in message and "latin.txt" in message and "strict=False" in message


def test_epub_is_read_by_element(tmp_path):
    body = (
        '<p>The first<a id="here"/> sentence of the book is here.</p>'
        "<dl><dt>upstream</dt><dd>The source of software that is being packaged.</dd></dl>"
        "<ul><li>Bisoprolol lowers the heart rate.</li></ul>"
        "<table><tr><td>Drug</td><td>Dose</td></tr></table>"
        "<pre>summary(fit)</pre>"
        "<figure><img src='echo.png'/><figcaption>An echocardiogram.</figcaption></figure>"
        "<aside><p>A side note on history.</p></aside>"
        "<p>Patients with heart failure<sup>3</sup> are followed up.</p>"
        "<div>A division that holds text and no other block is prose.</div>"
        "<p>An index above 115 g/m<sup>2</sup> and 10<sup>9</sup>/L cells were seen.</p>"
        '<p>Aortic stenosis is common.<sup><a href="#n1">4</a></sup> It is treated.</p>'
    )
    book = read_book(write_epub(tmp_path / "book.epub", [("One", body)]))
    assert book.chapters == (
        "The first sentence of the book is here.\n\n"
        "Patients with heart failure are followed up.\n\n"
        "A division that holds text and no other block is prose.\n\n"
        # a power after a number or a unit is kept; a note's mark, linked or not, goes
        "An index above 115 g/m^2 and 10^9/L cells were seen.\n\n"
        "Aortic stenosis is common. It is treated.",
    )
    assert book.dropped == {
        "code": 1,
        "footnote_marks": 2,
        "headings": 2,
        "lists": 3,  # and the reference list the writer adds
        "small_print": 2,
        "tables": 1,
    }
