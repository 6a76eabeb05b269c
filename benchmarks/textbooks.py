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

`--baseline REV` also measures the reader of an earlier commit (its textbooks.py and
cleaning.py, from `git show REV:...`), with the same language check, right before the
current one; `--repeat N` measures both N times, alternating, and keeps each one's best
time, since other processes share the cores (the load average is printed). Twenty random
kept sentences per document (seeded) are printed for the current reader.

    .venv/bin/python benchmarks/textbooks.py --baseline HEAD --repeat 3
"""

from __future__ import annotations

import argparse
import gzip
import importlib
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


def _git_show(rev: str, name: str) -> str:
    """The module `name` at commit `rev`, from `cardioembed/curation/` or, in commits
    before the package was split by stage, `cardioembed/`."""
    for path in (f"cardioembed/curation/{name}.py", f"cardioembed/{name}.py"):
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode == 0:
            return shown.stdout
    raise SystemExit(f"--baseline {rev}: no textbooks/cleaning modules in that commit")


def baseline_modules(rev: str):
    """textbooks and cleaning of commit `rev`, imported as a separate package (errors
    come from the working tree)."""
    folder = Path(tempfile.mkdtemp(prefix="cardioembed-baseline-"))
    package = folder / "cardioembed_baseline"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("textbooks", "cleaning"):
        text = _git_show(rev, name)
        for old in ("cardioembed.curation.cleaning", "cardioembed.cleaning"):
            text = text.replace(old, "cardioembed_baseline.cleaning")
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


def measure(read, split_passages, split_sentences, paths) -> dict:
    """Seconds, kept sentences and clean ones per document."""
    results = {}
    for name, path in paths.items():
        started = time.perf_counter()
        book = read(path)
        kept = sentences_of(book, split_passages, split_sentences)
        seconds = time.perf_counter() - started
        results[name] = (seconds, kept, sum(map(is_clean, kept)))
    return results


def report(label: str, results: dict, paths, show: bool) -> None:
    print(f"\n== {label}")
    print(
        f"{'document':28} {'units':>6} {'seconds':>8} {'units/s':>8} {'sentences':>9} {'clean':>7}"
    )
    total_units = total_seconds = total_clean = total_kept = 0
    for name, path in paths.items():
        n, unit = units(path)
        seconds, kept, clean = results[name]
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
    print(
        f"{'PDF pages, all':28} {total_units:>6} {total_seconds:>8.2f} "
        f"{total_units / total_seconds:>8.1f} {total_kept:>9} {total_clean / total_kept:>7.1%}"
    )
    if show:
        for name, (_, kept, _) in results.items():
            print(f"\n-- 20 random kept sentences of {name} (seed 0)")
            for sentence in random.Random(0).sample(kept, min(20, len(kept))):
                print(f"  * {sentence}")


def best(runs: list[dict]) -> dict:
    """Each document's fastest run (the sentences are the same in every run)."""
    return {name: min((run[name] for run in runs), key=lambda r: r[0]) for name in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="also measure the reader of this git revision")
    parser.add_argument("--language", default="english")
    parser.add_argument("--repeat", type=int, default=1, help="runs per reader (best kept)")
    args = parser.parse_args(argv)
    paths = fetch()

    from cardioembed.curation.cleaning import language_detector, split_passages
    from cardioembed.curation.sentences import split_sentences
    from cardioembed.curation.textbooks import read_book

    readers = {}
    if args.baseline:
        old = baseline_modules(args.baseline)
        old_cleaning = importlib.import_module("cardioembed_baseline.cleaning")
        if hasattr(old_cleaning, "language_detector"):
            old_cleaning.language_detector(args.language).detect_language_of("load models")
        readers[f"before ({args.baseline})"] = (
            lambda path: old.read_book(path, language=args.language),
            old_cleaning.split_passages,
        )
    language_detector(args.language).detect_language_of("load the language models first")
    readers["after (working tree)"] = (
        lambda path: read_book(path, language=args.language),
        split_passages,
    )
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {label: [] for label in readers}
    for _ in range(max(1, args.repeat)):
        for label, (read, passages) in readers.items():
            runs[label].append(measure(read, passages, split_sentences, paths))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for label in readers:
        report(label, best(runs[label]), paths, show=label.startswith("after"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
