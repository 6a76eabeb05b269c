"""Benchmark: reading real books into clean sentences.

Four freely licensed, prose-heavy documents that nobody in this project wrote are fetched
from Debian's archive with `apt-get download` (so the exact package versions are known)
into `benchmarks/results/textbooks-cache/` (git-ignored):

- `policy.pdf`, Debian Policy Manual (package debian-policy; GPL-2+)
- `developers-reference.epub`, Debian Developer's Reference (package developers-reference;
  GPL-2+)
- `R-intro.pdf`, An Introduction to R (package r-doc-pdf; GPL-2+)
- `R-FAQ.pdf`, the R FAQ (package r-doc-pdf; GPL-2+)

For each document the script reads the book, splits its passages into sentences of at
least 20 characters (as curation does) and prints pages per second (EPUB: documents of
its spine, shown as "docs") and the share of kept sentences that are clean. The rule,
stated here and independent of the filters it measures: a sentence is clean when it

1. starts like a sentence: an uppercase letter or a digit, optionally after an opening
   quote or parenthesis;
2. ends with terminal punctuation (. ! ? or :, optionally followed by a closing quote or
   parenthesis);
3. holds no run of 25 or more letters (words glued together);
4. is not markup: no LaTeX command, no HTML tag, no run of 3+ code characters ({};=<>$\\).

`--baseline REV` also measures the reader of an earlier commit (its textbooks.py,
cleaning.py and errors.py, from `git show REV:...`), close in time to the current one.
Twenty random kept sentences per document (seeded) are printed for the current reader.

    .venv/bin/python benchmarks/textbooks.py --baseline 033c78e
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / "results" / "textbooks-cache"
PACKAGES = ("debian-policy", "developers-reference", "r-doc-pdf")
DOCUMENTS = {
    "policy.pdf": "usr/share/doc/debian-policy/policy.pdf.gz",
    "developers-reference.epub": "usr/share/developers-reference/developers-reference.epub",
    "R-intro.pdf": "usr/share/R/doc/manual/R-intro.pdf",
    "R-FAQ.pdf": "usr/share/R/doc/manual/R-FAQ.pdf",
}

_STARTS = re.compile(r"^[\"'“‘(\[]?[A-Z0-9]")
_ENDS = re.compile(r"[.!?:][\"'”’)\]]*$")
_GLUED = re.compile(r"[^\W\d_]{25,}")
_MARKUP = re.compile(r"\\[A-Za-z]+|</?[A-Za-z][^<>]*>|[{};=<>$\\]{3,}")


def is_clean(sentence: str) -> bool:
    return bool(
        _STARTS.match(sentence)
        and _ENDS.search(sentence)
        and not _GLUED.search(sentence)
        and not _MARKUP.search(sentence)
    )


def fetch() -> dict[str, Path]:
    """The documents, downloaded and unpacked once into the cache folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {name: CACHE / name for name in DOCUMENTS}
    if all(p.is_file() for p in paths.values()):
        return paths
    debs = CACHE / "debs"
    debs.mkdir(exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    unpacked = CACHE / "unpacked"
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    for name, member in DOCUMENTS.items():
        source = unpacked / member
        if member.endswith(".gz"):
            with gzip.open(source, "rb") as src, open(paths[name], "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(source, paths[name])
    return paths


def baseline_modules(rev: str):
    """textbooks and cleaning of commit `rev`, imported as a separate package."""
    folder = Path(tempfile.mkdtemp(prefix="cardioembed-baseline-"))
    package = folder / "cardioembed_baseline"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("textbooks", "cleaning", "errors"):
        text = subprocess.run(
            ["git", "show", f"{rev}:cardioembed/{name}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("cardioembed_baseline.textbooks")


def sentences_of(book, split_passages, split_sentences) -> list[str]:
    return [
        sentence
        for chapter in book.chapters
        for passage in split_passages(chapter)
        for sentence in split_sentences(passage, min_chars=20)
    ]


def units(path: Path) -> tuple[int, str]:
    """Pages of a PDF, documents of an EPUB's spine."""
    if path.suffix == ".pdf":
        import pypdfium2 as pdfium

        document = pdfium.PdfDocument(str(path))
        try:
            return len(document), "pages"
        finally:
            document.close()
    import zipfile

    with zipfile.ZipFile(path) as archive:
        opf = next(n for n in archive.namelist() if n.endswith(".opf"))
        return archive.read(opf).decode().count("<itemref"), "docs"


def measure(label: str, read, split_passages, split_sentences, paths, show: bool) -> None:
    from cardioembed.curation.sentences import split_sentences as _  # noqa: F401  (import cost)

    print(f"\n== {label}")
    print(
        f"{'document':28} {'units':>6} {'seconds':>8} {'units/s':>8} {'sentences':>9} {'clean':>7}"
    )
    total_units = total_seconds = total_clean = total_kept = 0
    samples = {}
    for name, path in paths.items():
        n, unit = units(path)
        started = time.perf_counter()
        book = read(path)
        kept = sentences_of(book, split_passages, split_sentences)
        seconds = time.perf_counter() - started
        clean = sum(map(is_clean, kept))
        share = clean / len(kept) if kept else 0.0
        print(
            f"{name:28} {n:>6} {seconds:>8.2f} {n / seconds:>8.1f} {len(kept):>9} "
            f"{share:>7.1%}  ({unit})"
        )
        if unit == "pages":
            total_units += n
            total_seconds += seconds
        total_clean += clean
        total_kept += len(kept)
        samples[name] = random.Random(0).sample(kept, min(20, len(kept)))
    print(
        f"{'PDF pages, all':28} {total_units:>6} {total_seconds:>8.2f} "
        f"{total_units / total_seconds:>8.1f} {total_kept:>9} {total_clean / total_kept:>7.1%}"
    )
    if show:
        for name, sample in samples.items():
            print(f"\n-- 20 random kept sentences of {name} (seed 0)")
            for sentence in sample:
                print(f"  * {sentence}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="also measure the reader of this git revision")
    parser.add_argument("--language", default="english")
    args = parser.parse_args(argv)
    paths = fetch()

    from cardioembed.curation.cleaning import language_detector, split_passages
    from cardioembed.curation.sentences import split_sentences
    from cardioembed.curation.textbooks import read_book

    language_detector(args.language).detect_language_of("load the language models first")
    if args.baseline:
        old = baseline_modules(args.baseline)
        measure(
            f"before ({args.baseline})",
            old.read_book,
            importlib.import_module("cardioembed_baseline.cleaning").split_passages,
            split_sentences,
            paths,
            show=False,
        )
    measure(
        "after (working tree)",
        lambda path: read_book(path, language=args.language),
        split_passages,
        split_sentences,
        paths,
        show=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
