"""Benchmark of the corpus curation core on synthetic textbook text.

For each size N (sentences) it generates a seeded, textbook-like corpus (chapters of
wrapped paragraphs on pages separated by form feeds, running headers and page numbers,
words hyphenated across line ends, ~2.5% exact and ~2.5% near-duplicate sentences), then
times each stage of the curation core:

    clean        textbook_reader.cleaning's text_paragraphs and finish, per chapter
    split        cardioembed.curation.sentences.split_sentences, per chapter
    dedup        cardioembed.curation.dedup.deduplicate (exact + near duplicates)
    group_split  cardioembed.curation.splits.split_frame (groups = chapters, merged where they
                 share a near duplicate; 70/10/20)
    audit        cardioembed.curation.dedup.near_duplicate_audit (train vs test)

and prints sentences per second, the time of each stage and the ratio of the total times
of the largest and smallest sizes (a ratio under 12 for 10x the data: near-linear scaling).
The package calls pysbd and datasketch as they are: on 2 cores, sentence splitting takes
about 0.7 ms per sentence (107 s of the 163 s for 150,000; pysbd builds and runs a regular
expression per abbreviation it meets) and cleaning about 0.08 ms.

    python benchmarks/curation.py --sizes 5000 50000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardioembed.curation.dedup import deduplicate, near_duplicate_audit  # noqa: E402
from cardioembed.curation.sentences import split_sentences  # noqa: E402
from cardioembed.curation.splits import split_frame  # noqa: E402
from textbook_reader.cleaning import finish, text_paragraphs  # noqa: E402

THRESHOLD = 0.8
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
SENTENCES_PER_CHAPTER = 500
TARGET_RATIO = 12.0

# ------------------------------------------------------------------ synthetic text

DRUGS = (
    "bisoprolol metoprolol carvedilol ramipril lisinopril enalapril sacubitril-valsartan "
    "spironolactone eplerenone furosemide bumetanide dapagliflozin empagliflozin digoxin "
    "amiodarone apixaban rivaroxaban warfarin aspirin clopidogrel ticagrelor atorvastatin "
    "rosuvastatin ivabradine hydralazine nitroglycerin verapamil diltiazem amlodipine"
).split()
CONDITIONS = (
    "heart failure with reduced ejection fraction|heart failure with preserved ejection "
    "fraction|atrial fibrillation|aortic stenosis|mitral regurgitation|hypertrophic "
    "cardiomyopathy|dilated cardiomyopathy|acute coronary syndrome|stable angina|"
    "infective endocarditis|acute pericarditis|pulmonary hypertension|ventricular "
    "tachycardia|complete heart block|peripartum cardiomyopathy|cardiac amyloidosis|"
    "aortic dissection|myocarditis|Brugada syndrome|long QT syndrome"
).split("|")
TESTS = (
    "transthoracic echocardiography|cardiac magnetic resonance imaging|the twelve-lead "
    "electrocardiogram|coronary angiography|exercise stress testing|ambulatory Holter "
    "monitoring|measurement of natriuretic peptides|high-sensitivity troponin testing|"
    "right heart catheterisation|computed tomography coronary angiography"
).split("|")
STRUCTURES = (
    "left ventricle|right ventricle|left atrium|interventricular septum|mitral valve|"
    "aortic valve|tricuspid valve|pericardium|sinoatrial node|atrioventricular node|"
    "left anterior descending artery|right coronary artery|ascending aorta"
).split("|")
FINDINGS = (
    "a reduced ejection fraction|regional wall motion abnormalities|a raised jugular "
    "venous pressure|a pansystolic murmur at the apex|an ejection systolic murmur|"
    "bilateral pitting oedema|ST-segment elevation|a prolonged QT interval|late "
    "gadolinium enhancement|left ventricular hypertrophy|a dilated left atrium|"
    "pericardial effusion|a third heart sound"
).split("|")
EFFECTS = (
    "reduces mortality|lowers the rate of hospital admission|improves symptoms|"
    "slows disease progression|relieves congestion|controls the ventricular rate|"
    "prevents thromboembolic events|improves exercise capacity|reduces afterload"
).split("|")
OUTCOMES = (
    "sudden cardiac death|stroke|hospitalisation for heart failure|myocardial "
    "infarction|all-cause mortality|recurrent arrhythmia|progressive dyspnoea"
).split("|")
QUALIFIERS = (
    "In most patients|In elderly patients|In clinical practice|In randomised trials|"
    "At presentation|During follow-up|After myocardial infarction|In selected cases|"
    "When symptoms persist|In the acute setting"
).split("|")
TOPICS = (
    "Heart failure|Valvular heart disease|Arrhythmias|Coronary artery disease|"
    "Cardiomyopathies|Pericardial disease|Congenital heart disease|Cardiac imaging|"
    "Hypertension|Pulmonary vascular disease"
).split("|")

# Clauses; a sentence joins two of them, so that (as in real prose) sentences do not
# repeat by chance and only the planted copies are duplicates.
CLAUSES = (
    "{q}, treatment with {drug} {effect} in {cond}",
    "{test} typically shows {finding} in patients with {cond}",
    "the {struct} is often affected in {cond}, and {test} is used to assess it",
    "{q}, {cond} is associated with an increased risk of {outcome}, reported in about "
    "{pct}% of cases",
    "a dose of {dose} mg of {drug} once daily is usual, e.g. in {cond}",
    "patients with {cond} may present with {finding} after {days} days",
    "combined with {drug2}, {drug} {effect} if potassium is checked every {days} weeks",
    "the differential diagnosis of {finding} includes {cond} and {cond2}",
    "{q}, approx. {pct}% of patients with {cond} develop {outcome} within {days} years",
    "blood pressure should be kept below {bp}/{bp2} mm Hg in {cond}",
    "{test} remains the first investigation when {cond} is suspected (Smith et al.)",
    "thickening of the {struct} suggests {cond}, whereas {finding} points to {cond2}",
)
CONNECTORS = ("; moreover, ", ", and ", ", while ", "; in addition, ", "; however, ", ", so ")


def _clause(rng: random.Random) -> str:
    return rng.choice(CLAUSES).format(
        q=rng.choice(QUALIFIERS),
        drug=rng.choice(DRUGS),
        drug2=rng.choice(DRUGS),
        effect=rng.choice(EFFECTS),
        cond=rng.choice(CONDITIONS),
        cond2=rng.choice(CONDITIONS),
        test=rng.choice(TESTS),
        struct=rng.choice(STRUCTURES),
        finding=rng.choice(FINDINGS),
        outcome=rng.choice(OUTCOMES),
        pct=rng.randint(2, 60),
        dose=rng.choice((1.25, 2.5, 5, 10, 20, 40, 80)),
        days=rng.randint(2, 14),
        bp=rng.randint(120, 150),
        bp2=rng.randint(70, 90),
    )


def _sentence(rng: random.Random) -> str:
    first, second = _clause(rng), _clause(rng)
    if second[:1].islower() or second.startswith(("In ", "At ", "During ", "After ", "When ")):
        second = second[0].lower() + second[1:]
    s = first + rng.choice(CONNECTORS) + second + "."
    return s[0].upper() + s[1:]


def _near_copy(sentence: str, rng: random.Random) -> str:
    words = sentence.split()
    k = rng.randrange(1, len(words) - 1)
    replacement = rng.choice(("usually", "often", "commonly", "frequently", "typically"))
    words[k] = replacement
    return " ".join(words)


def _wrap(paragraph: str, rng: random.Random, width: int = 78) -> list[str]:
    """Greedy line wrap; now and then a long word is hyphenated across the line end."""
    lines: list[str] = []
    line = ""
    for word in paragraph.split():
        if len(line) + 1 + len(word) <= width or not line:
            line = f"{line} {word}" if line else word
            continue
        room = width - len(line) - 2
        if len(word) >= 8 and word.isalpha() and room >= 3 and rng.random() < 0.3:
            cut = rng.randint(3, min(room, len(word) - 3))
            lines.append(f"{line} {word[:cut]}-")
            line = word[cut:]
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def generate_corpus(n_sentences: int, seed: int = 0) -> list[tuple[str, str]]:
    """(chapter id, raw chapter text) pairs holding about `n_sentences` sentences.

    About 2.5% of sentences are exact copies of an earlier sentence (often from another
    chapter) and 2.5% near copies (one word replaced).
    """
    rng = random.Random(seed)
    n_chapters = max(1, round(n_sentences / SENTENCES_PER_CHAPTER))
    per_chapter = [n_sentences // n_chapters] * n_chapters
    for i in range(n_sentences - sum(per_chapter)):
        per_chapter[i] += 1
    history: list[str] = []
    chapters = []
    page_no = 1
    for c, n in enumerate(per_chapter, start=1):
        sentences = []
        for _ in range(n):
            r = rng.random()
            if history and r < 0.025:
                s = rng.choice(history)
            elif history and r < 0.05:
                s = _near_copy(rng.choice(history), rng)
            else:
                s = _sentence(rng)
                history.append(s)
            sentences.append(s)
        lines: list[str] = []
        i = 0
        while i < len(sentences):
            k = rng.randint(3, 8)
            lines.extend(_wrap(" ".join(sentences[i : i + k]), rng))
            lines.append("")
            i += k
        topic = TOPICS[c % len(TOPICS)]
        pages = []
        for p in range(0, len(lines), 44):
            header = f"Chapter {c} · {topic}" if page_no % 2 else "Clinical Cardiology"
            body = "\n".join(lines[p : p + 44]).strip("\n")
            pages.append(f"{header}\n\n{body}\n\n{page_no}")
            page_no += 1
        chapters.append((f"chapter-{c:04d}", "\f".join(pages)))
    return chapters


# ------------------------------------------------------------------ benchmark


class _Stages:
    """Wall-clock and CPU (process) seconds per stage. CPU time includes every thread of
    the process, so on a machine shared with other work it shows what the stage needs
    when wall-clock time is inflated by waiting for a core."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = time.perf_counter() - w
        self.cpu[name] = time.process_time() - c


def clean_book_text(text: str) -> str:
    """Prose paragraphs of plain text, as `read_book` cleans a chapter of a .txt file."""
    stats: Counter = Counter()
    return "\n\n".join(finish(text_paragraphs(text, stats, {}), stats, {}))


def run_size(n: int, seed: int) -> dict:
    t0 = time.perf_counter()
    chapters = generate_corpus(n, seed)
    gen_s = time.perf_counter() - t0
    n_chars = sum(len(t) for _, t in chapters)
    stage = _Stages()

    with stage("clean"):
        cleaned = [(cid, clean_book_text(text)) for cid, text in chapters]

    groups: list[str] = []
    sentences: list[str] = []
    with stage("split"):
        for cid, text in cleaned:
            found = split_sentences(text, 20)
            sentences.extend(found)
            groups.extend([cid] * len(found))

    with stage("dedup"):
        keep, n_exact, n_near = deduplicate(sentences, THRESHOLD)

    frame = pd.DataFrame({"group": groups, "text": sentences})[keep]
    with stage("group_split"):
        split = split_frame(frame, FRACTIONS, 42, THRESHOLD, text_cols=("text",))

    with stage("audit"):
        audit = near_duplicate_audit(
            split.loc[split.split == "train", "text"].tolist(),
            split.loc[split.split == "test", "text"].tolist(),
            THRESHOLD,
        )

    times = stage.wall
    total = sum(times.values())
    return {
        "n": n,
        "chapters": len(chapters),
        "mb": n_chars / 1e6,
        "generate_s": gen_s,
        "sentences": len(sentences),
        "kept": int(keep.sum()),
        "exact_removed": n_exact,
        "near_removed": n_near,
        "split_counts": split["split"].value_counts().to_dict(),
        "leaks": len(audit),
        "times": times,
        "cpu": stage.cpu,
        "total": total,
        "cpu_total": sum(stage.cpu.values()),
    }


def report(r: dict) -> None:
    counts = r["split_counts"]
    print(
        f"\n== {r['n']:,} sentences requested: {r['chapters']} chapters, {r['mb']:.1f} MB of raw "
        f"text (generated in {r['generate_s']:.1f} s, not timed)"
    )
    print(
        f"   split into {r['sentences']:,} sentences; dedup kept {r['kept']:,} "
        f"(exact removed {r['exact_removed']:,}, near removed {r['near_removed']:,}); "
        f"train/validation/test = {counts.get('train', 0):,}/{counts.get('validation', 0):,}/"
        f"{counts.get('test', 0):,}; audit leaks = {r['leaks']}"
    )
    print(f"   {'stage':<12} {'wall s':>8} {'share':>6} {'cpu s':>8}")
    for stage, seconds in r["times"].items():
        share = 100 * seconds / r["total"] if r["total"] else 0
        print(f"   {stage:<12} {seconds:8.2f} {share:5.1f}% {r['cpu'][stage]:8.2f}")
    print(
        f"   {'total':<12} {r['total']:8.2f} {100:5.1f}% {r['cpu_total']:8.2f}"
        f"  -> {r['sentences'] / r['total']:,.0f} sentences/s wall, "
        f"{r['sentences'] / r['cpu_total']:,.0f} sentences/s cpu"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"curation benchmark: sizes {args.sizes}, seed {args.seed}, "
        f"{os.cpu_count()} CPU cores, load average {load:.1f} at start"
    )
    results = [run_size(n, args.seed) for n in args.sizes]
    for r in results:
        report(r)
    print()
    largest = max(results, key=lambda r: r["n"])
    if len(results) >= 2:
        smallest = min(results, key=lambda r: r["n"])
        ratio = largest["total"] / smallest["total"]
        verdict = "met" if ratio < TARGET_RATIO else "NOT met"
        print(
            f"ratio total({largest['n']:,}) / total({smallest['n']:,}) = {ratio:.2f} "
            f"for {largest['n'] / smallest['n']:.0f}x the data "
            f"(target < {TARGET_RATIO:.0f}): {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
