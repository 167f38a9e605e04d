"""The filter language: hypothesis-generated filters and payloads against a brute-force oracle."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamedia.errors import InvalidFilter, InvalidInput
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.filters import parse_filter
from metamedia.vectors.payloads import PayloadColumns, validate_payload
from tests.conftest import DATA

# ---- oracle: the documented semantics, written independently of the numpy evaluator -------------


def _date(text: str) -> float | None:
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return float(stored) == float(wanted)
    return type(stored) is type(wanted) and stored == wanted


def _in_bounds(value: float, bounds: dict[str, float]) -> bool:
    checks = {"gt": value > bounds.get("gt", -np.inf), "gte": value >= bounds.get("gte", -np.inf)}
    checks |= {"lt": value < bounds.get("lt", np.inf), "lte": value <= bounds.get("lte", np.inf)}
    return all(checks.values())


def _scalar_matches(value: Any, op: str, arg: Any) -> bool:
    if op == "eq":
        return _same(value, arg)
    if op == "in":
        return any(_same(value, a) for a in arg)
    if op == "contains":
        return isinstance(value, str) and arg.lower() in value.lower()
    # range
    on_dates = any(isinstance(b, str) for b in arg.values())
    if on_dates:
        if not isinstance(value, str) or _date(value) is None:
            return False
        return _in_bounds(_date(value), {k: _date(b) for k, b in arg.items()})
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return _in_bounds(float(value), {k: float(b) for k, b in arg.items()})


def oracle(node: dict, payload: dict, point_id: int) -> bool:
    if "field" not in node:
        ok = all(oracle(c, payload, point_id) for c in node.get("must", []))
        if node.get("should"):
            ok = ok and any(oracle(c, payload, point_id) for c in node["should"])
        return ok and not any(oracle(c, payload, point_id) for c in node.get("must_not", []))
    field = node["field"]
    op = next(k for k in node if k != "field")
    arg = node[op]
    if field == "$id":
        return _scalar_matches(point_id, op, arg)
    if op == "exists":
        return (field in payload and payload[field] is not None) == arg
    if field not in payload:
        return False
    value = payload[field]
    if isinstance(value, list):
        return any(_scalar_matches(v, op, arg) for v in value)
    return _scalar_matches(value, op, arg)


# ---- strategies -----------------------------------------------------------------------------------

FIELDS = ["a", "b", "c", "tags"]
words = st.sampled_from(["star", "Star Wars", "war", "drama", "", "Ω", "1999-01-02", "2001-05-06T10:00:00"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.0, 2.0, 1e10]),
    words,
)
values = st.one_of(scalars, st.lists(st.one_of(st.integers(-3, 3), words), max_size=3))
payloads = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)
eq_values = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 2.0, 1.0]), words)
number_bounds = st.dictionaries(
    st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from([-2, 0, 0.5, 1, 3]), min_size=1
)
date_bounds = st.dictionaries(
    st.sampled_from(["gt", "gte", "lt", "lte"]),
    st.sampled_from(["1999-01-01", "2000-01-01", "2001-05-06T10:00:00"]),
    min_size=1,
)


def conditions(field: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    return st.one_of(
        st.builds(lambda f, v: {"field": f, "eq": v}, field, eq_values),
        st.builds(lambda f, v: {"field": f, "in": v}, field, st.lists(eq_values, max_size=3)),
        st.builds(lambda f, v: {"field": f, "range": v}, field, st.one_of(number_bounds, date_bounds)),
        st.builds(lambda f, v: {"field": f, "exists": v}, field, st.booleans()),
        st.builds(
            lambda f, v: {"field": f, "contains": v}, field, st.sampled_from(["star", "WAR", "ω", "-0"])
        ),
        st.builds(lambda v: {"field": "$id", "in": v}, st.lists(st.integers(0, 40), max_size=5)),
        st.builds(lambda v: {"field": "$id", "range": v}, number_bounds),
    )


condition = conditions(st.sampled_from([*FIELDS, "missing"]))
groups = st.recursive(
    st.fixed_dictionaries(
        {}, optional={k: st.lists(condition, max_size=3) for k in ("must", "should", "must_not")}
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            k: st.lists(st.one_of(condition, inner), max_size=3) for k in ("must", "should", "must_not")
        },
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payloads, min_size=1, max_size=40), groups)
def test_column_evaluation_matches_oracle(docs: list[dict], raw_filter: dict) -> None:
    columns = PayloadColumns()
    columns.append([validate_payload(d, "p") for d in docs])
    ids = np.arange(len(docs), dtype=np.int64)
    tree = parse_filter(raw_filter)
    expected = [oracle(raw_filter, d, i) for i, d in enumerate(docs)]
    if tree is None:
        assert all(expected)
        return
    assert columns.evaluate(tree, ids, len(docs)).tolist() == expected


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ([], "expected an object"),
        ({"must": {"field": "a", "eq": 1}}, "filter.must: expected a list"),
        ({"should": [{"field": "a", "eq": 1}], "sort": 1}, "unknown key"),
        ({"must": [{"field": "a"}]}, "exactly one operator"),
        ({"must": [{"field": "a", "eq": 1, "in": [1]}]}, "exactly one operator"),
        ({"must": [{"field": "a", "like": "x"}]}, "unknown operator 'like'"),
        ({"must": [{"field": "", "eq": 1}]}, "field: expected a non-empty string"),
        ({"must": [{"eq": 1}]}, "needs 'field'"),
        ({"must": [{"field": "a", "eq": [1]}]}, "filter.must[0].eq"),
        ({"must": [{"field": "a", "eq": None}]}, "got null"),
        ({"must": [{"field": "a", "in": "x"}]}, "expected a list of values"),
        ({"must": [{"field": "a", "range": {"gte": "yesterday"}}]}, "not an ISO date"),
        ({"must": [{"field": "a", "range": {"gte": 1, "lt": "2000-01-01"}}]}, "mixes numbers and dates"),
        ({"must": [{"field": "a", "range": {"from": 1}}]}, "unknown bound"),
        ({"must": [{"field": "a", "range": {}}]}, "range"),
        ({"must": [{"field": "a", "range": {"gt": True}}]}, "expected a number"),
        ({"must": [{"field": "a", "exists": "yes"}]}, "expected true or false"),
        ({"must": [{"field": "a", "contains": ""}]}, "non-empty string"),
        ({"must": [{"field": "$id", "contains": "x"}]}, "supports eq, in and range"),
        ({"must": [{"field": "a", "eq": float("nan")}]}, "finite"),
        ({"must_not": [{"must": [{"field": "a", "eq": {"x": 1}}]}]}, "filter.must_not[0].must[0].eq"),
    ],
)
def test_malformed_filters_name_the_problem(raw: Any, needle: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(raw)
    assert needle in caught.value.message


@pytest.mark.parametrize(
    "payload",
    [{"x": {"a": 1}}, {"x": [1.5]}, {"x": [True]}, {"x": float("inf")}, {"$id": 1}, {"": 1}, [1, 2]],
)
def test_payload_values_outside_the_model_are_refused(payload: Any) -> None:
    with pytest.raises(InvalidInput):
        validate_payload(payload, "payload")


def _movielens() -> list[dict]:
    movies = []
    with open(DATA / "movielens-latest-small" / "movies.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            year = re.search(r"\((\d{4})\)\s*$", row["title"])
            genres = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            doc: dict[str, Any] = {"title": row["title"], "genres": genres}
            if year:
                doc["year"] = int(year.group(1))
                doc["release"] = f"{year.group(1)}-06-01"
            movies.append({"id": int(row["movieId"]), "payload": doc})
    return movies


def test_filtered_search_over_movielens_payloads_matches_oracle(tmp_path: Path) -> None:
    """Real catalog payloads: every filtered result matches, and nothing matching and closer is missed."""
    faiss.omp_set_num_threads(1)
    movies = _movielens()
    assert len(movies) > 9000
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((len(movies), 16)).astype(np.float32)
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp_path / 's.db'}"), tmp_path)
    col = db.create_collection(CollectionConfig(name="movies", dim=16, metric="l2", ef_construction=40))
    ids = np.array([m["id"] for m in movies])
    for start in range(0, len(movies), 5000):
        part = slice(start, start + 5000)
        col.upsert(ids[part], vectors[part], [m["payload"] for m in movies[part]])
    filters = [
        {"must": [{"field": "genres", "in": ["War"]}, {"field": "year", "range": {"gte": 1990, "lt": 2000}}]},
        {"must": [{"field": "title", "contains": "star"}]},
        {"should": [{"field": "genres", "eq": "Documentary"}, {"field": "genres", "eq": "Film-Noir"}]},
        {
            "must": [{"field": "genres", "in": ["Drama"]}],
            "must_not": [{"field": "genres", "in": ["Romance", "War"]}],
        },
        {"must": [{"field": "release", "range": {"gte": "2010-01-01"}}, {"field": "year", "exists": True}]},
        {"must": [{"field": "year", "exists": False}]},
        {
            "must": [
                {"field": "genres", "in": ["Comedy"]},
                {"must_not": [{"field": "year", "range": {"lt": 2015}}]},
            ]
        },
    ]
    query = rng.standard_normal(16).astype(np.float32)
    distances = np.sqrt(((vectors - query) ** 2).sum(axis=1))
    for raw in filters:
        matching = [i for i, m in enumerate(movies) if oracle(raw, m["payload"], m["id"])]
        assert matching, raw
        hits = col.search(query, k=10, filter=raw)
        truth = sorted(matching, key=lambda i: distances[i])[:10]
        assert [h.id for h in hits] == [movies[i]["id"] for i in truth], raw
