"""Deterministic 9:1 re-split (as the paper does it): counts, stability, refusal of silent changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from aacbatch.data.ingest import ingest
from aacbatch.data.splits import assign, resplit
from aacbatch.errors import InputError, NotFoundError
from aacbatch.registry.schema import Clip, SplitMember

from conftest import make_clotho


def test_clotho_sizes_give_the_papers_4395_489():
    names = [f"clip_{i:05d}.wav" for i in range(3839 + 1045)]
    first = assign(names, 0.9, seed=0)
    assert len(first) == 4395 and len(names) - len(first) == 489
    assert assign(list(reversed(names)), 0.9, seed=0) == first  # input order does not matter
    assert assign(names, 0.9, seed=1) != first


def test_resplit_writes_train_val_and_eval_alias(registry, tmp_path):
    ingest(registry, "clotho", make_clotho(tmp_path / "c", {"development": 15, "validation": 5, "evaluation": 4}), name="c")
    result = resplit(registry, "c")
    assert result.status == "created" and result.counts == {"train": 18, "val": 2, "eval": 4}
    with registry.transaction() as session:
        rows = session.execute(select(SplitMember.name, Clip.name).join(Clip, Clip.id == SplitMember.clip_id)).all()
    by_split: dict[str, set] = {}
    for split, clip in rows:
        by_split.setdefault(split, set()).add(clip)
    assert by_split["train"] | by_split["val"] == by_split["development"] | by_split["validation"]
    assert not by_split["train"] & by_split["val"]
    assert by_split["eval"] == by_split["evaluation"]
    assert by_split["train"] == assign(sorted(by_split["train"] | by_split["val"]), 0.9, 0)


def test_same_recipe_is_a_noop_other_recipe_needs_replace(registry, clotho_dir):
    ingest(registry, "clotho", clotho_dir, name="c")
    resplit(registry, "c", ratio=0.5)
    assert resplit(registry, "c", ratio=0.5).status == "unchanged"
    with registry.transaction() as session:
        before = session.scalar(select(func.count()).select_from(SplitMember))
    with pytest.raises(InputError, match="already has splits made differently.*--replace"):
        resplit(registry, "c", ratio=0.7)
    assert resplit(registry, "c", ratio=0.7, replace=True).status == "replaced"
    with registry.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SplitMember)) == before


@pytest.mark.parametrize("kwargs, message", [
    (dict(ratio=1.0), "strictly between 0 and 1"),
    (dict(sources=("development", "nope")), "no source split nope"),
    (dict(into=("development", "x")), "already a source split"),
    (dict(eval_from="nope"), "no source split 'nope'"),
])
def test_bad_split_arguments(registry, clotho_dir, kwargs, message):
    ingest(registry, "clotho", clotho_dir, name="c")
    with pytest.raises(InputError, match=message):
        resplit(registry, "c", **kwargs)


def test_unknown_dataset_names_the_known_ones(registry, clotho_dir):
    ingest(registry, "clotho", clotho_dir, name="known")
    with pytest.raises(NotFoundError, match=r"unknown dataset 'other' \(known: known\)"):
        resplit(registry, "other")
