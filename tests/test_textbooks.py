"""Reading textbooks from a folder: PDF, EPUB, text and Markdown, and the bad files."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from cardioembed.errors import InputError, ParameterError
from cardioembed.sentences import split_sentences
from cardioembed.textbooks import Book, Problem, read_book, read_folder, strip_markdown

PARAGRAPH = (
    "Heart failure is a clinical syndrome in which the heart cannot pump enough blood. "
    "Patients present with dyspnoea, fatigue and ankle swelling. "
    "Treatment with a beta-blocker, e.g. bisoprolol, lowers mortality."
)


# ------------------------------------------------------------------ file writers


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A minimal valid PDF: one Helvetica text line per entry; a page without lines
    gets a drawn rectangle only (no text layer, like a scanned page)."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        if lines:
            body = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
            body += [f"{_pdf_string(line)} Tj T*" for line in lines]
            body.append("ET")
        else:
            body = ["0.5 g", "72 72 400 600 re f"]
        stream = "\n".join(body).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def write_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("cardioembed-test")
    book.set_title("Clinical Cardiology")
    book.set_language("en")
    chapters = []
    for i, (heading, body) in enumerate(
        [
            ("Heart failure", PARAGRAPH),
            (
                "Atrial fibrillation",
                "Atrial fibrillation is the commonest arrhythmia<a href='#r1'>12</a>. "
                "Anticoagulation prevents stroke in most patients.",
            ),
        ]
    ):
        chapter = epub.EpubHtml(title=heading, file_name=f"ch{i}.xhtml", lang="en")
        chapter.content = (
            f"<html><body><h1>{heading}</h1><p>{body}</p>"
            "<h2>References</h2><ol><li>Smith J, et al. Trial. Lancet 2019;393:1-9.</li>"
            "</ol></body></html>"
        )
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = tuple(chapters)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epub.write_epub(str(path), book)
    return path


# ---------------------------------------------------------------------------- PDF


def test_pdf_with_text_is_read_and_cleaned(tmp_path):
    pages = []
    for number, valve in enumerate(["mitral", "aortic", "tricuspid", "pulmonary"], start=1):
        pages.append(
            [
                "Clinical Cardiology",
                f"Disease of the {valve} valve is a clinical problem in which the heart",
                f"cannot pump enough blood for the body. The {valve} myo-",
                f"cardial damage was extensive and diffuse in the {valve} series.",
                str(number),
            ]
        )
    pdf = write_pdf(tmp_path / "cardiology.pdf", pages)
    book = read_book(pdf, pages_per_chunk=2)
    assert isinstance(book, Book)
    assert book.title == "cardiology"
    assert len(book.chapters) == 2  # four pages in chunks of two
    text = "\n\n".join(book.chapters)
    assert "Clinical Cardiology" not in text  # running header
    assert "\n1\n" not in text and not text.endswith("4")  # page numbers
    sentences = split_sentences(text)
    assert "The tricuspid myocardial damage was extensive and diffuse in the tricuspid series." in (
        sentences
    )


def test_corrupt_pdf_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n garbage \x00\xff")
    with pytest.raises(InputError, match=r"broken\.pdf could not be read as a PDF") as info:
        read_book(bad)
    assert "re-export" in str(info.value)


def test_pdf_without_text_layer_says_run_ocr(tmp_path):
    pdf = write_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(InputError, match=r"no PDF text could be extracted from scan\.pdf"):
        read_book(pdf)


# --------------------------------------------------------------------------- EPUB


def test_epub_is_read_in_reading_order(tmp_path):
    book = read_book(write_epub(tmp_path / "cardio.epub"))
    assert book.title == "Clinical Cardiology"
    assert len(book.chapters) == 2
    first, second = book.chapters
    assert first.startswith("Heart failure\n\nHeart failure is a clinical syndrome")
    assert "e.g. bisoprolol" in first
    assert "Smith J" not in first + second  # reference lists dropped
    assert "commonest arrhythmia." in second  # citation link "12" dropped


def test_corrupt_epub_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.epub"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"broken\.epub could not be read as an EPUB"):
        read_book(bad)


# ------------------------------------------------------------------ text, Markdown


def test_text_file_split_into_chapters(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(f"Chapter 1 Failure\n\n{PARAGRAPH}\n\nChapter 2 Rhythm\n\n{PARAGRAPH}\n")
    book = read_book(path)
    assert len(book.chapters) == 2
    assert book.chapters[1].startswith("Chapter 2 Rhythm")


def test_utf8_with_bom_and_utf16_are_read(tmp_path):
    text = f"Dose 5 µg/kg at 37 °C; β-blockers. {PARAGRAPH}"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(text.encode("utf-8-sig"))
    wide = tmp_path / "wide.txt"
    wide.write_bytes(text.encode("utf-16"))
    for path in (bom, wide):
        chapter = read_book(path).chapters[0]
        assert chapter.startswith("Dose 5 μg/kg at 37 °C; β-blockers.")  # NFKC: µ -> μ


def test_markdown_is_stripped_and_split_on_headings(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "# Heart failure\n\n"
        "**Heart failure** is a *clinical* syndrome; see [the guideline](http://x.org).\n\n"
        "```python\nprint('code is not prose')\n```\n\n"
        "- Loop diuretics relieve `congestion`.\n\n"
        "# Valve disease\n\n"
        "![echo](echo.png)\n"
        "> Aortic stenosis is common in the elderly.\n"
    )
    book = read_book(path)
    assert book.chapters == (
        "Heart failure\n\nHeart failure is a clinical syndrome; see the guideline."
        "\n\nLoop diuretics relieve congestion.",
        "Valve disease\n\nAortic stenosis is common in the elderly.",
    )
    assert strip_markdown("__bold__ and _it_ and snake_case_name") == (
        "bold and it and snake_case_name"
    )


def test_non_utf8_text_names_file_offset_and_fix(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 au lait spots; 5 \u00b5g dose.".encode("latin-1"))
    with pytest.raises(InputError) as info:
        read_book(path)
    message = str(info.value)
    assert "latin.txt is not UTF-8" in message
    assert "byte offset 3" in message and "0xe9" in message
    assert "iconv" in message


def test_binary_file_named_txt(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"image\.txt contains NUL bytes"):
        read_book(path)
    renamed = tmp_path / "paper.txt"
    renamed.write_bytes(b"%PDF-1.4\n...")
    with pytest.raises(InputError, match=r"paper\.txt is a PDF file"):
        read_book(renamed)


def test_empty_and_unsupported_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.txt is empty"):
        read_book(empty)
    doc = tmp_path / "notes.docx"
    doc.write_bytes(b"PK")
    with pytest.raises(InputError, match=r"notes\.docx has an unsupported extension"):
        read_book(doc)
    with pytest.raises(ParameterError, match="pages_per_chunk"):
        read_book(empty, pages_per_chunk=0)


def test_fifty_megabyte_single_line_is_processed_quickly(tmp_path):
    sentence = b"The left ventricle ejects blood into the aorta during systole. "
    path = tmp_path / "oneline.txt"
    repeats = 50 * 2**20 // len(sentence)
    path.write_bytes(sentence * repeats)
    assert path.stat().st_size > 49 * 2**20
    start = time.perf_counter()
    book = read_book(path)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"{elapsed:.1f} s"
    (chapter,) = book.chapters
    # Re-broken into passages of about 2,000 characters, none of the text lost.
    assert chapter.count("\n\n") > 20_000
    assert chapter.count("systole.") == repeats
    assert split_sentences(chapter[:100_000])[0] == sentence.decode().strip()


# ------------------------------------------------------------------------- folder


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_folder(tmp_path / "nowhere")
    file = tmp_path / "a.txt"
    file.write_text(PARAGRAPH)
    with pytest.raises(InputError, match="is not a folder"):
        read_folder(file)


def test_empty_folder_names_folder_and_extensions(tmp_path):
    (tmp_path / "readme.docx").write_bytes(b"PK")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    with pytest.raises(InputError) as info:
        read_folder(tmp_path, progress=False)
    message = str(info.value)
    assert str(tmp_path) in message
    assert ".pdf" in message and ".epub" in message and ".txt" in message and ".md" in message


def test_folder_with_only_bad_files_lists_problems(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(InputError) as info:
        read_folder(tmp_path, progress=False)
    message = str(info.value)
    assert "no usable textbook" in message
    assert "broken.pdf" in message and "latin.txt" in message


def test_mixed_folder_keeps_good_files_and_reports_bad_ones(tmp_path):
    write_pdf(tmp_path / "good.pdf", [[PARAGRAPH[:80], PARAGRAPH[80:160]]])
    write_epub(tmp_path / "good.epub")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.md").write_text(f"# Notes\n\n{PARAGRAPH}\n")
    (tmp_path / "good.txt").write_text(PARAGRAPH)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    write_pdf(tmp_path / "scan.pdf", [[]])
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 au lait")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    books, problems = read_folder(tmp_path, progress=False)
    assert sorted(b.path.name for b in books) == ["good.epub", "good.md", "good.pdf", "good.txt"]
    assert all(isinstance(p, Problem) for p in problems)
    by_name = {p.path.name: p.message for p in problems}
    assert set(by_name) == {"broken.pdf", "scan.pdf", "latin.txt", "binary.txt", "slides.pptx"}
    for name, message in by_name.items():
        assert name in message
    assert "OCR" in by_name["scan.pdf"]
    # Only some extensions asked for: the others are reported as skipped.
    books, problems = read_folder(tmp_path, extensions=(".md",), progress=False)
    assert [b.path.name for b in books] == ["good.md"]
    with pytest.raises(ParameterError, match="extensions"):
        read_folder(tmp_path, extensions=(".doc",))
