"""Store: current objects, source ownership and kube-proxy-style change tracking."""

from __future__ import annotations

import dataclasses

import pytest

from discovery.model import KIND_ENDPOINTSLICE, KIND_SERVICE, ObjectKey
from discovery.store import Change, Store
from tests.discovery.factories import make_ingress, make_service, make_slice


def svc_key(name: str, ns: str = "default") -> ObjectKey:
    return ObjectKey(KIND_SERVICE, ns, name)


class Kicks:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def store() -> Store:
    return Store()


def test_upsert_get_objects(store: Store) -> None:
    web = make_service("web")
    eps = make_slice(web, ["10.1.0.1"])
    store.upsert(web)
    store.upsert(eps)
    assert store.get(svc_key("web")) is web
    assert store.get(eps.key) is eps
    assert store.get(svc_key("nope")) is None
    assert store.get(ObjectKey("Unknown", "default", "web")) is None
    assert dict(store.objects(KIND_SERVICE)) == {web.key: web}
    assert dict(store.objects(KIND_ENDPOINTSLICE)) == {eps.key: eps}
    assert dict(store.objects("Unknown")) == {}


def test_objects_view_is_read_only(store: Store) -> None:
    store.upsert(make_service("web"))
    view = store.objects(KIND_SERVICE)
    with pytest.raises(TypeError):
        view[svc_key("x")] = make_service("x")  # type: ignore[index]


def test_add_records_change_and_kicks(store: Store) -> None:
    kicks = Kicks()
    store.on_change = kicks
    web = make_service("web")
    store.upsert(web)
    assert kicks.count == 1
    assert store.take_changes() == {web.key: Change(None, web)}
    assert store.take_changes() == {}


def test_update_equal_to_current_records_nothing(store: Store) -> None:
    kicks = Kicks()
    web = make_service("web", cluster_ip="10.96.0.10")
    store.upsert(web)
    store.take_changes()
    store.on_change = kicks
    # An equal but distinct object (as a re-parse of an unchanged file gives).
    store.upsert(make_service("web", cluster_ip="10.96.0.10"))
    assert kicks.count == 0
    assert store.pending() == 0
    assert store.take_changes() == {}
    assert store.get(web.key) is web


def test_changed_twice_keeps_oldest_previous(store: Store) -> None:
    v1 = make_service("web", cluster_ip="10.96.0.1")
    v2 = make_service("web", cluster_ip="10.96.0.2")
    v3 = make_service("web", cluster_ip="10.96.0.3")
    store.upsert(v1)
    store.take_changes()
    store.upsert(v2)
    store.upsert(v3)
    assert store.take_changes() == {v1.key: Change(v1, v3)}


def test_added_then_deleted_is_no_change(store: Store) -> None:
    kicks = Kicks()
    store.on_change = kicks
    web = make_service("web")
    store.upsert(web)
    store.delete(web.key)
    assert kicks.count == 2
    assert store.take_changes() == {}
    assert store.get(web.key) is None


def test_changed_then_changed_back_is_no_change(store: Store) -> None:
    v1 = make_service("web", cluster_ip="10.96.0.1")
    store.upsert(v1)
    store.take_changes()
    store.upsert(make_service("web", cluster_ip="10.96.0.2"))
    store.upsert(make_service("web", cluster_ip="10.96.0.1"))
    assert store.take_changes() == {}


def test_deleted_then_readded_different_is_update(store: Store) -> None:
    v1 = make_service("web", cluster_ip="10.96.0.1")
    v2 = make_service("web", cluster_ip="10.96.0.2")
    store.upsert(v1)
    store.take_changes()
    store.delete(v1.key)
    store.upsert(v2)
    assert store.take_changes() == {v1.key: Change(v1, v2)}


def test_delete_records_previous_and_missing_delete_is_noop(store: Store) -> None:
    kicks = Kicks()
    web = make_service("web")
    store.upsert(web)
    store.take_changes()
    store.on_change = kicks
    store.delete(svc_key("missing"))
    assert kicks.count == 0
    store.delete(web.key)
    assert kicks.count == 1
    assert store.take_changes() == {web.key: Change(web, None)}


def test_replace_source_adds_updates_and_removes(store: Store) -> None:
    kicks = Kicks()
    store.on_change = kicks
    a, b = make_service("a"), make_service("b")
    store.replace_source("f.yaml", [a, b])
    assert kicks.count == 1  # one kick per call, not per object
    assert store.take_changes() == {a.key: Change(None, a), b.key: Change(None, b)}
    assert store.source_keys("f.yaml") == {a.key, b.key}

    b2 = make_service("b", cluster_ip="10.96.9.9")
    c = make_service("c")
    store.replace_source("f.yaml", [b2, c])
    assert store.take_changes() == {
        a.key: Change(a, None),
        b.key: Change(b, b2),
        c.key: Change(None, c),
    }
    assert store.get(a.key) is None
    assert store.owner(c.key) == "f.yaml"


def test_replace_source_unchanged_does_not_kick(store: Store) -> None:
    kicks = Kicks()
    store.replace_source("f.yaml", [make_service("a"), make_service("b")])
    store.take_changes()
    store.on_change = kicks
    store.replace_source("f.yaml", [make_service("b"), make_service("a")])
    assert kicks.count == 0
    assert store.take_changes() == {}


def test_replace_source_empty_deletes_everything_of_that_source(store: Store) -> None:
    a, b = make_service("a"), make_service("b")
    store.replace_source("one.yaml", [a])
    store.replace_source("two.yaml", [b])
    store.take_changes()
    store.replace_source("one.yaml", [])
    assert store.take_changes() == {a.key: Change(a, None)}
    assert store.get(b.key) is b
    assert store.source_keys("one.yaml") == frozenset()


def test_latest_writer_owns_the_key(store: Store) -> None:
    first = make_service("web", cluster_ip="10.96.0.1")
    second = make_service("web", cluster_ip="10.96.0.2")
    store.replace_source("one.yaml", [first, make_service("other")])
    store.replace_source("two.yaml", [second])
    assert store.owner(first.key) == "two.yaml"
    assert store.get(first.key) is second
    assert store.source_keys("one.yaml") == {svc_key("other")}
    store.take_changes()
    # one.yaml forgetting web does not delete what two.yaml now owns...
    store.replace_source("one.yaml", [])
    assert store.get(first.key) is second
    # ...and two.yaml forgetting it does.
    store.replace_source("two.yaml", [])
    assert store.get(first.key) is None
    assert store.take_changes() == {
        svc_key("other"): Change(make_service("other"), None),
        first.key: Change(second, None),
    }


def test_upsert_with_source_claims_and_plain_upsert_keeps_owner(store: Store) -> None:
    web = make_service("web")
    store.replace_source("Service", [web])
    store.upsert(make_service("web", cluster_ip="10.96.0.5"))
    assert store.owner(web.key) == "Service"
    store.upsert(make_service("web", cluster_ip="10.96.0.6"), source_id="other")
    assert store.owner(web.key) == "other"
    assert store.source_keys("Service") == frozenset()
    store.replace_source("Service", [])
    assert store.get(web.key) is not None


def test_delete_drops_ownership(store: Store) -> None:
    web = make_service("web")
    store.replace_source("f.yaml", [web])
    store.delete(web.key)
    assert store.owner(web.key) is None
    assert store.source_keys("f.yaml") == frozenset()
    store.upsert(web)
    store.take_changes()
    store.replace_source("f.yaml", [])
    # Re-added without a source: not deleted by f.yaml's replace.
    assert store.get(web.key) is web


def test_replace_source_repeated_key_last_wins(store: Store) -> None:
    store.replace_source(
        "f.yaml",
        [make_service("w", cluster_ip="10.96.0.1"), make_service("w", cluster_ip="10.96.0.2")],
    )
    got = store.get(svc_key("w"))
    assert got is not None and got == make_service("w", cluster_ip="10.96.0.2")
    change = store.take_changes()[svc_key("w")]
    assert change.previous is None and change.current is got


def test_kinds_are_separate_and_namespaced(store: Store) -> None:
    svc = make_service("web", ns="a")
    ing = make_ingress("web", ns="a")
    other_ns = make_service("web", ns="b")
    for obj in (svc, ing, other_ns):
        store.upsert(obj)
    assert len(store.take_changes()) == 3
    assert store.get(svc.key) is svc
    assert store.get(ing.key) is ing
    assert store.get(other_ns.key) is other_ns


def test_equality_is_by_value_for_nested_fields(store: Store) -> None:
    web = make_service("web")
    eps = make_slice(web, [("10.1.0.1", True)])
    store.upsert(eps)
    store.take_changes()
    flipped = dataclasses.replace(eps, endpoints=make_slice(web, [("10.1.0.1", False)]).endpoints)
    store.upsert(flipped)
    assert store.take_changes() == {eps.key: Change(eps, flipped)}


def test_many_objects_round_trip(store: Store) -> None:
    objs = [make_service(f"s{i}", cluster_ip=f"10.96.{i // 250}.{i % 250}") for i in range(2000)]
    store.replace_source("big.yaml", objs)
    assert len(store.take_changes()) == 2000
    store.replace_source("big.yaml", objs[::2])
    changes = store.take_changes()
    assert len(changes) == 1000
    assert all(c.current is None for c in changes.values())
    assert len(store.objects(KIND_SERVICE)) == 1000
