"""The audiences tests' oracle: SPEC section 10 evaluated by brute force over user_tags, and
random expressions to compare the index with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from tagsys.store import repository
from tagsys.store.db import create_store_engine

Table = dict[str, set[int]]


def table(url: str) -> Table:
    """Every user_tags row's tag ids, by user."""
    engine = create_store_engine(url)
    try:
        rows = repository.read_user_tags(bind=engine)
    finally:
        engine.dispose()
    return {uid: set(row.tag_ids) for uid, row in rows.items()}


def brute_force(expression: Any, rows: Table, names: Mapping[str, int]) -> set[str]:
    """The members of `expression` by SPEC section 10's definition."""
    if isinstance(expression, bool):
        raise TypeError(expression)
    if isinstance(expression, int):
        return {u for u, tags in rows.items() if expression in tags}
    if isinstance(expression, str):
        return brute_force(names[expression], rows, names)
    ((op, value),) = expression.items()
    if op == "not":
        return set(rows) - brute_force(value, rows, names)
    parts = [brute_force(v, rows, names) for v in value]
    return set.intersection(*parts) if op == "and" else set.union(*parts)


def expressions(tag_ids: Sequence[int], names: Sequence[str]) -> st.SearchStrategy[Any]:
    leaves = st.sampled_from([*tag_ids, *names])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda v: {"not": v}, inner),
            st.builds(lambda v: {"and": v}, st.lists(inner, min_size=1, max_size=4)),
            st.builds(lambda v: {"or": v}, st.lists(inner, min_size=1, max_size=4)),
        ),
        max_leaves=8,
    )
