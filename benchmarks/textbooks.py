"""Benchmark: reading real books into clean sentences, judged on documents held out.

Fourteen freely licensed, prose-heavy documents that nobody in this project wrote are
fetched from Debian's archive with `apt-get download` (so the exact package versions are
known) into `benchmarks/results/textbooks-cache/` (git-ignored): manuals and FAQs, a
history of the Debian project, four EPUBs and two documents set in two columns (LaTeX
News and a TUGboat article), as clinical textbooks are. The documents are never committed.

Before the reader was tuned, a seeded shuffle (seed 20, within each kind: two-column PDF,
EPUB, one-column PDF) split them into a tuning half and a held-out half; the headline
figure is the held-out half's, as for a model. For each document the script reads the
book, splits its passages into sentences of at least 20 characters (as curation does)
and prints pages per second (EPUB: documents of its spine, "docs"), the kept sentences
and the share of them that are clean. The rule, stated here and independent of the
filters it measures: a sentence is clean when it

1. starts like a sentence: an uppercase letter or a digit, optionally after an opening
   quote or parenthesis;
2. ends with terminal punctuation (. ! ? or :, optionally followed by a closing quote or
   parenthesis);
3. holds no run of 25 or more letters (words glued together);
4. is not markup: no LaTeX command, no HTML tag, no run of 3+ code characters ({};=<>$\\).

`--baseline REV` also measures the reader of an earlier commit (textbook_reader's books.py
and cleaning.py, or before them cardioembed/curation's textbooks.py and cleaning.py, from
`git show REV:...`); `--repeat N` measures each reader N times and
keeps each document's best time, since other processes share the cores. `--samples FILE`
writes 20 seeded kept sentences per held-out document; `--half tuning` measures the
tuning half only (what tuning may look at).

    .venv/bin/python benchmarks/textbooks.py --baseline HEAD --repeat 3 --samples /tmp/s.txt
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import inspect
import os
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
# name: (Debian package, path inside it, kind)
DOCUMENTS = {
    "debian-reference.pdf": (
        "debian-reference-en",
        "usr/share/debian-reference/debian-reference.en.pdf",
        "pdf",
    ),
    "policy.epub": ("debian-policy", "usr/share/doc/debian-policy/policy.epub", "epub"),
    "developers-reference.pdf": (
        "developers-reference",
        "usr/share/developers-reference/developers-reference.pdf",
        "pdf",
    ),
    "developers-reference.epub": (
        "developers-reference",
        "usr/share/developers-reference/developers-reference.epub",
        "epub",
    ),
    "R-lang.pdf": ("r-doc-pdf", "usr/share/R/doc/manual/R-lang.pdf", "pdf"),
    "R-FAQ.pdf": ("r-doc-pdf", "usr/share/R/doc/manual/R-FAQ.pdf", "pdf"),
    "debian-faq.pdf": ("debian-faq", "usr/share/doc/debian/FAQ/debian-faq.en.pdf.gz", "pdf"),
    "project-history.pdf": (
        "debian-history",
        "usr/share/doc/debian-history/docs/project-history.en.pdf",
        "pdf",
    ),
    "project-history.epub": (
        "debian-history",
        "usr/share/doc/debian-history/docs/project-history.en.epub",
        "epub",
    ),
    "debmake-doc.epub": ("debmake-doc", "usr/share/doc/debmake-doc/debmake-doc.en.epub", "epub"),
    "maint-guide.pdf": ("maint-guide", "usr/share/doc/maint-guide/maint-guide.en.pdf", "pdf"),
    "gnu-standards.pdf": ("gnu-standards", "usr/share/doc/gnu-standards/standards.pdf.gz", "pdf"),
    "ltnews.pdf": (
        "texlive-latex-base-doc",
        "usr/share/doc/texlive-doc/latex/base/ltnews.pdf",
        "2col",
    ),
    "tugboat-babelbib.pdf": (
        "texlive-latex-base-doc",
        "usr/share/doc/texlive-doc/bibtex/babelbib/tugboat-babelbib.pdf",
        "2col",
    ),
}
SPLIT_SEED = 20

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


def halves() -> dict[str, str]:
    """Each document's half ("tuning" or "held-out"): a seeded shuffle within each kind,
    alternating, so that both halves hold each kind."""
    rng = random.Random(SPLIT_SEED)
    half: dict[str, str] = {}
    for kind in ("2col", "epub", "pdf"):
        names = sorted(n for n, (_, _, k) in DOCUMENTS.items() if k == kind)
        rng.shuffle(names)
        for i, name in enumerate(names):
            half[name] = "tuning" if i % 2 == 0 else "held-out"
    return half


def fetch() -> dict[str, Path]:
    """The documents, downloaded and unpacked once into the cache folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {name: CACHE / name for name in DOCUMENTS}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if not missing:
        return paths
    debs, unpacked = CACHE / "debs", CACHE / "unpacked"
    debs.mkdir(exist_ok=True)
    packages = sorted({DOCUMENTS[name][0] for name in missing})
    subprocess.run(["apt-get", "download", *packages], cwd=debs, check=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    for name in missing:
        source = unpacked / DOCUMENTS[name][1]
        if source.suffix == ".gz":
            with gzip.open(source, "rb") as src, open(paths[name], "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(source, paths[name])
    shutil.rmtree(unpacked, ignore_errors=True)
    return paths


def baseline_modules(rev: str):
    """The reader (books and cleaning) of commit `rev`, imported as a separate package
    (before the reader had its own errors, they come from the working tree)."""
    folder = Path(tempfile.mkdtemp(prefix="cardioembed-baseline-"))
    package = folder / "cardioembed_baseline"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # where the reader lived at `rev`: its own package, or earlier cardioembed.curation
    for books, cleaning in (
        ("textbook_reader/books.py", "textbook_reader/cleaning.py"),
        ("cardioembed/curation/textbooks.py", "cardioembed/curation/cleaning.py"),
    ):
        shown = [
            subprocess.run(
                ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True
            )
            for path in (books, cleaning)
        ]
        if all(result.returncode == 0 for result in shown):
            break
    else:
        sys.exit(f"no textbook reader found at {rev}")
    for name, result in zip(("books", "cleaning"), shown, strict=True):
        text = re.sub(
            r"(?:cardioembed\.curation|textbook_reader)\.cleaning",
            "cardioembed_baseline.cleaning",
            result.stdout,
        )
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("cardioembed_baseline.books")


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


def measure(read, split_passages, split_sentences, paths) -> dict:
    """Seconds to read, seconds to read and split into sentences, and kept sentences per
    document."""
    results = {}
    for name, path in paths.items():
        started = time.perf_counter()
        book = read(path)
        read_s = time.perf_counter() - started
        kept = [
            sentence
            for chapter in book.chapters
            for passage in split_passages(chapter)
            for sentence in split_sentences(passage, 20)
        ]
        results[name] = (read_s, time.perf_counter() - started, kept)
    return results


def report(label: str, results: dict, paths, half: dict[str, str]) -> None:
    print(f"\n== {label}")
    print(
        f"{'document':26} {'half':8} {'units':>6} {'read/s':>7} {'+split/s':>8} "
        f"{'kept':>6} {'clean':>6}   (units per second: read; read and split)"
    )
    for part in ("tuning", "held-out"):
        pages = read_pdf = total_pdf = clean_all = kept_all = 0
        worst = 1.0
        for name in sorted(n for n in results if half[n] == part):
            n, unit = units(paths[name])
            read_s, total_s, kept = results[name]
            clean = sum(map(is_clean, kept))
            share = clean / len(kept) if kept else 0.0
            worst = min(worst, share)
            print(
                f"{name:26} {part:8} {n:>6} {n / read_s:>7.1f} {n / total_s:>8.1f} "
                f"{len(kept):>6} {share:>6.1%}  ({unit})"
            )
            if unit == "pages":
                pages, read_pdf, total_pdf = pages + n, read_pdf + read_s, total_pdf + total_s
            clean_all, kept_all = clean_all + clean, kept_all + len(kept)
        if kept_all:
            print(
                f"{'  ' + part + ', all':35} {pages:>6} {pages / max(read_pdf, 1e-9):>7.1f} "
                f"{pages / max(total_pdf, 1e-9):>8.1f} {kept_all:>6} {clean_all / kept_all:>6.1%}"
                f"  (PDF pages; lowest document {worst:.1%})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="also measure the reader of this git revision")
    parser.add_argument("--repeat", type=int, default=1, help="runs per reader (best kept)")
    parser.add_argument("--half", choices=("tuning", "held-out", "both"), default="both")
    parser.add_argument("--only", nargs="*", help="measure these documents only")
    parser.add_argument(
        "--samples", type=Path, help="write 20 seeded sentences per held-out document"
    )
    args = parser.parse_args(argv)
    half = halves()
    paths = {
        name: path
        for name, path in fetch().items()
        if args.half in ("both", half[name]) and (not args.only or name in args.only)
    }

    from cardioembed.curation.sentences import split_sentences
    from textbook_reader import read_book, split_passages

    readers = {}
    if args.baseline:
        old = baseline_modules(args.baseline)
        old_cleaning = importlib.import_module("cardioembed_baseline.cleaning")
        off = {}
        if "language" in inspect.signature(old.read_book).parameters:
            off["language"] = None  # an older reader's language filter: off, as now
        readers[f"before ({args.baseline})"] = (
            lambda path: old.read_book(path, **off),
            old_cleaning.split_passages,
        )
    readers["after (working tree)"] = (read_book, split_passages)
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {label: [] for label in readers}
    for _ in range(max(1, args.repeat)):
        for label, (read, passages) in readers.items():
            runs[label].append(measure(read, passages, split_sentences, paths))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for label, measured in runs.items():
        fastest = {n: min((run[n] for run in measured), key=lambda r: r[1]) for n in paths}
        report(label, fastest, paths, half)
    if args.samples:
        after = runs["after (working tree)"][0]
        with open(args.samples, "w") as out:
            for name in sorted(n for n in paths if half[n] == "held-out"):
                kept = after[name][2]
                out.write(f"== {name}: 20 of {len(kept)} kept sentences (seed 0)\n")
                for sentence in random.Random(0).sample(kept, min(20, len(kept))):
                    out.write(f"  * {sentence}\n")
        print(f"\nsamples of the held-out documents: {args.samples}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
