"""Contract suite for StateStore."""

from __future__ import annotations

from llmtrail.store.interfaces import StateStore


def test_put_get_list_delete(state_store: StateStore) -> None:
    assert state_store.get("profiles", "a") is None
    state_store.put("profiles", "b", {"name": "B", "tags": {"dept": "x"}})
    state_store.put("profiles", "a", [1, 2, 3])
    state_store.put("other", "a", "elsewhere")
    assert state_store.get("profiles", "b") == {"name": "B", "tags": {"dept": "x"}}
    assert list(state_store.list("profiles")) == ["a", "b"]
    state_store.put("profiles", "a", {"replaced": True})
    assert state_store.get("profiles", "a") == {"replaced": True}
    assert state_store.delete("profiles", "a") is True
    assert state_store.delete("profiles", "a") is False
    assert state_store.list("profiles") == {"b": {"name": "B", "tags": {"dept": "x"}}}
    assert state_store.get("other", "a") == "elsewhere"


def test_values_are_copies(state_store: StateStore) -> None:
    value = {"n": [1]}
    state_store.put("ns", "k", value)
    value["n"].append(2)
    got = state_store.get("ns", "k")
    assert got == {"n": [1]}
    got["n"].append(3)
    assert state_store.get("ns", "k") == {"n": [1]}


def test_put_many_writes_all_and_the_last_value_of_a_key_wins(state_store: StateStore) -> None:
    state_store.put("reads/a", "old", {"gone": False})
    items = [(f"reads/{i % 3}", f"k{i}", {"i": i}) for i in range(2_000)]
    items.append(("reads/a", "old", {"replaced": 1}))
    items.append(("reads/a", "old", {"replaced": 2}))
    state_store.put_many(items)
    state_store.put_many([])
    assert len(state_store.list("reads/0")) == 667
    assert state_store.get("reads/1", "k1999") == {"i": 1999}
    assert state_store.list("reads/a") == {"old": {"replaced": 2}}
    state_store.put("reads/a", "old", {"after": True})  # a later put still replaces it
    assert state_store.get("reads/a", "old") == {"after": True}
