import random

import pandas as pd
import pytest

from cardioembed.curation.dedup import near_duplicate_audit
from cardioembed.curation.splits import (
    assign_group_splits,
    check_fractions,
    merge_groups,
    split_frame,
)
from cardioembed.errors import InputError, ParameterError

FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
WORDS = (
    "heart valve atrium ventricle aorta pressure rhythm murmur failure stenosis "
    "infarction troponin catheter stent diuretic sodium potassium oedema dyspnoea "
    "syncope angina embolism thrombus warfarin heparin statin lipid exercise"
).split()


def _sentence(rng: random.Random, k: int) -> str:
    return f"Sentence {k} says " + " ".join(rng.choice(WORDS) for _ in range(14)) + "."


def _groups(n_groups: int = 60, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"chapter-{g:02d}" for g in range(n_groups) for _ in range(rng.randint(1, 40))]


# --------------------------------------------------------------------------- fractions


@pytest.mark.parametrize(
    "values",
    [
        (1.2, -0.1, -0.1),  # a fraction above 1 (the sum is 1)
        (0.7, 0.2, 0.2),  # does not add up to 1
        (0.5, 0.1, 0.1),
        (float("nan"), 0.5, 0.5),
        ("0.8", 0.1, 0.1),
    ],
)
def test_bad_fractions_name_the_parameter_and_say_what_to_do(values):
    with pytest.raises(ParameterError) as info:
        check_fractions(dict(zip(("train", "validation", "test"), values, strict=True)))
    message = str(info.value)
    assert info.value.name == "split_fractions"
    assert "add up to 1" in message and "[0, 1]" in message
    assert isinstance(info.value, InputError)


def test_fractions_need_the_three_keys():
    assert check_fractions({"test": 0, "train": 1, "validation": 0}) == {
        "train": 1.0,
        "validation": 0.0,
        "test": 0.0,
    }
    for bad in ({"train": 0.9, "test": 0.1}, {"train": 0.8, "val": 0.1, "test": 0.1}, [0.8, 0.2]):
        with pytest.raises(ParameterError, match="split_fractions"):
            check_fractions(bad)


# --------------------------------------------------------------------------- assignment


def test_assignment_is_deterministic_for_a_seed_and_changes_with_it():
    groups = _groups()
    a = assign_group_splits(groups, FRACTIONS, seed=3)
    assert a == assign_group_splits(groups, FRACTIONS, seed=3)
    assert a != assign_group_splits(groups, FRACTIONS, seed=4)
    assert set(a) == set(groups)
    assert set(a.values()) == {"train", "validation", "test"}


def test_assignment_does_not_depend_on_input_order():
    groups = _groups()
    shuffled = list(groups)
    random.Random(1).shuffle(shuffled)
    expected = assign_group_splits(groups, FRACTIONS, 11)
    assert assign_group_splits(shuffled, FRACTIONS, 11) == expected
    assert assign_group_splits(list(reversed(groups)), FRACTIONS, 11) == expected


def test_assignment_sizes_are_close_to_the_fractions_in_items():
    groups = [f"g{g}" for g in range(400) for _ in range(1 + g % 7)]
    assignment = assign_group_splits(groups, FRACTIONS, seed=0)
    share = pd.Series([assignment[g] for g in groups]).value_counts(normalize=True)
    for name, wanted in FRACTIONS.items():
        assert abs(share[name] - wanted) < 0.02, (name, share[name])


def test_a_split_with_fraction_zero_gets_nothing():
    assignment = assign_group_splits(_groups(), {"train": 0.9, "validation": 0, "test": 0.1}, 5)
    assert set(assignment.values()) == {"train", "test"}
    only_train = assign_group_splits(_groups(), {"train": 1, "validation": 0, "test": 0}, 5)
    assert set(only_train.values()) == {"train"}


def test_assignment_rejects_bad_seed_and_missing_labels():
    with pytest.raises(ParameterError, match="seed"):
        assign_group_splits(["a"], FRACTIONS, seed=-1)
    with pytest.raises(InputError, match="group label"):
        assign_group_splits(["a", None], FRACTIONS, seed=0)


# --------------------------------------------------------------------------- merging


def test_merge_groups_joins_groups_sharing_a_near_duplicate():
    rng = random.Random(2)
    s = [_sentence(rng, k) for k in range(6)]
    near = s[0].replace("says", "states")
    groups = ["b", "b", "c", "a", "d", "e"]
    texts = [(s[0], s[1]), (s[2], None), (s[3], s[4]), (s[5], near), "x y z", ()]
    merged = merge_groups(groups, texts, 0.8)
    # "a" holds a near copy of a text of "b": both become "a" (the smaller label).
    assert merged == ["a", "a", "c", "a", "d", "e"]
    assert merge_groups(groups, texts, 1.0) == groups
    # an item without any text (None or NaN, as pandas gives it) joins no other group
    assert merge_groups(["b", "a", "c"], [s[0], None, float("nan")], 0.8) == ["b", "a", "c"]


def test_merge_groups_is_transitive():
    rng = random.Random(3)
    s1, s2 = _sentence(rng, 1), _sentence(rng, 2)
    texts = [s1, s1.upper(), s2, s2 + "!!"]
    assert merge_groups(["z", "y", "y", "x"], texts, 0.8) == ["x", "x", "x", "x"]


def test_merge_groups_checks_lengths():
    with pytest.raises(ParameterError, match="texts"):
        merge_groups(["a", "b"], ["only one"], 0.8)


# --------------------------------------------------------------------------- split_frame


def _pairs_frame(n_groups: int = 40, per_group: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for g in range(n_groups):
        for k in range(per_group):
            rows.append(
                {
                    "group": f"g{g:02d}",
                    "anchor": _sentence(rng, g * 1000 + k),
                    "positive": _sentence(rng, g * 1000 + k + 500),
                }
            )
    return pd.DataFrame(rows)


def _plant_leaks(df: pd.DataFrame) -> pd.DataFrame:
    """Copy (with one word changed) an anchor of each of several groups into another group."""
    df = df.copy()
    for g in range(0, 40, 4):
        src = df.index[df["group"] == f"g{g:02d}"][0]
        dst = df.index[df["group"] == f"g{(g + 17) % 40:02d}"][1]
        df.loc[dst, "positive"] = df.loc[src, "anchor"].replace("says", "states")
    return df


def _texts(df: pd.DataFrame, split: str) -> list[str]:
    part = df[df["split"] == split]
    return part["anchor"].tolist() + part["positive"].tolist()


def test_split_frame_adds_split_and_keeps_groups_whole():
    df = _pairs_frame()
    out = split_frame(df, FRACTIONS, 1, 0.8)
    assert list(out.columns) == [*df.columns, "split"]
    assert "split" not in df.columns  # the input is not changed
    assert (out.groupby("group")["split"].nunique() == 1).all()
    assert set(out["split"]) == {"train", "validation", "test"}
    shuffled = split_frame(df.sample(frac=1, random_state=3), FRACTIONS, 1, 0.8)
    pd.testing.assert_frame_equal(out, shuffled.loc[df.index])


def test_audit_finds_a_planted_leak_without_merge_and_none_after_merge():
    df = _plant_leaks(_pairs_frame())
    naive = split_frame(df, FRACTIONS, 1, None)
    leaks = near_duplicate_audit(_texts(naive, "train"), _texts(naive, "test"), 0.8)
    assert len(leaks) >= 1
    assert (leaks["jaccard"] >= 0.8).all()
    pairs = zip(leaks["test_text"], leaks["train_text"], strict=False)
    assert all("states" in t or "states" in r for t, r in pairs)

    safe = split_frame(df, FRACTIONS, 1, 0.8)
    for a, b in [("train", "test"), ("train", "validation"), ("validation", "test")]:
        assert near_duplicate_audit(_texts(safe, a), _texts(safe, b), 0.8).empty
    # The groups of each leak the naive split had now share a split.
    split_of_text = {}
    for _, row in safe.iterrows():
        split_of_text[row["anchor"]] = split_of_text[row["positive"]] = row["split"]
    for test_text, train_text in zip(leaks["test_text"], leaks["train_text"], strict=False):
        assert split_of_text[test_text] == split_of_text[train_text]


def test_split_frame_names_missing_columns():
    df = _pairs_frame(2, 2)
    with pytest.raises(InputError, match="group"):
        split_frame(df.drop(columns="group"), FRACTIONS, 1, 0.8)
    with pytest.raises(ParameterError, match="split_fractions"):
        split_frame(df, {"train": 0.9, "validation": 0.2, "test": 0.1}, 1, 0.8)
    with pytest.raises(ParameterError, match="near_duplicate_threshold"):
        split_frame(df, FRACTIONS, 1, 0)
