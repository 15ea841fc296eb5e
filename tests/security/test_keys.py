"""Keys: kept only as keyed hashes, scoped to a workspace, revoked and expired by every
ring that shares the state store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from llmtrail.errors import ConfigError, NotFound, ValidationError
from llmtrail.security.keys import KeyRing, KeySpec, model_allowed
from llmtrail.security.principal import Permission
from llmtrail.security.rate_limits import RateLimits
from llmtrail.security.secret import ServerSecret, check_secret, load_secret
from llmtrail.store.memory import MemoryStateStore

SECRET = ServerSecret(b"s" * 48)


def ring(state: MemoryStateStore, **kw: object) -> KeyRing:
    return KeyRing(state, SECRET, **kw)  # type: ignore[arg-type]


def test_a_key_is_stored_only_as_a_keyed_hash() -> None:
    state = MemoryStateStore()
    issued = ring(state).create(KeySpec(role="admin"))
    stored = state.get("keys", issued.id)
    assert issued.key.startswith(f"ltk_{issued.id}_")
    assert issued.key not in repr(stored)
    assert issued.key.split("_", 2)[2] not in repr(stored)
    assert stored["hash"] == SECRET.mac("api-key", issued.key)
    other_secret = KeyRing(state, ServerSecret(b"t" * 48))
    assert other_secret.authenticate(issued.key, "bearer") is None  # HMAC, not a bare hash


def test_roles_workspace_and_bodies_make_the_principal() -> None:
    keys = ring(MemoryStateStore())
    reader = keys.create(KeySpec(role="reader", workspace="acme"))
    bodies = keys.create(KeySpec(role="reader", workspace="acme", bodies=True))
    gateway = keys.create(KeySpec(role="gateway", workspace="beta", models=("gpt-*",), rpm=5))
    p = keys.authenticate(reader.key, "bearer")
    assert p is not None and p.workspace == "acme" and p.key_id == reader.id
    assert p.can(Permission.READ) and not p.can(Permission.BODIES)
    assert not p.can(Permission.MANAGE) and not p.can(Permission.GATEWAY)
    pb = keys.authenticate(bodies.key, "bearer")
    assert pb is not None and pb.can(Permission.BODIES)
    pg = keys.authenticate(gateway.key, "x-api-key")
    assert pg is not None and pg.can(Permission.GATEWAY) and not pg.can(Permission.READ)
    assert model_allowed(pg, "gpt-4o") and not model_allowed(pg, "claude-3")
    assert keys.authenticate(gateway.key + "x", "bearer") is None


def test_revocation_reaches_another_ring_on_the_same_store() -> None:
    state = MemoryStateStore()
    here, there = ring(state, refresh_s=0.2), ring(state, refresh_s=0.2)
    issued = here.create(KeySpec(role="admin"))
    assert there.authenticate(issued.key, "bearer") is not None  # a miss refreshes
    here.revoke(issued.id, "test")
    deadline = time.monotonic() + 10
    while there.authenticate(issued.key, "bearer") is not None:
        assert time.monotonic() < deadline, "revoked key still accepted after 10 s"
        time.sleep(0.05)
    assert here.get(issued.id)["revoked"]


def test_expired_keys_stop_working() -> None:
    now = [datetime(2026, 12, 6, tzinfo=UTC)]
    keys = ring(MemoryStateStore(), clock=lambda: now[0])
    issued = keys.create(KeySpec(role="reader", expires=now[0] + timedelta(hours=1)))
    assert keys.authenticate(issued.key, "bearer") is not None
    now[0] += timedelta(hours=2)
    assert keys.authenticate(issued.key, "bearer") is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (KeySpec(role="root"), "role"),
        (KeySpec(role="reader", workspace="a b"), "workspace"),
        (KeySpec(role="reader", workspace="x" * 65), "workspace"),
        (KeySpec(role="gateway", rpm=0), "rpm"),
        (KeySpec(role="gateway", tpm=10**10), "tpm"),
        (KeySpec(role="gateway", models=("",)), "models[0]"),
        (KeySpec(role="gateway", bodies=True), "bodies"),
        (KeySpec(role="reader", expires=datetime(2027, 1, 1)), "expires"),
    ],
)
def test_bad_specs_name_the_field(spec: KeySpec, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ring(MemoryStateStore()).create(spec)
    assert caught.value.field == field


def test_unknown_key_id_is_not_found() -> None:
    keys = ring(MemoryStateStore())
    with pytest.raises(NotFound):
        keys.revoke("nope")


def test_env_admin_key_is_kept_hashed_and_replaced_when_it_changes() -> None:
    state = MemoryStateStore()
    keys = ring(state)
    keys.ensure_env_admin("a-long-operator-chosen-key-1")
    assert keys.has_admin()
    assert keys.authenticate("a-long-operator-chosen-key-1", "bearer") is not None
    keys.ensure_env_admin("a-long-operator-chosen-key-2")
    assert keys.authenticate("a-long-operator-chosen-key-1", "bearer") is None
    assert "a-long-operator-chosen-key-2" not in repr(state.list("keys"))
    with pytest.raises(ValidationError):
        keys.ensure_env_admin("short")


def test_secret_file_is_private_and_a_different_secret_refuses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = MemoryStateStore()
    first = load_secret(tmp_path, "")
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert load_secret(tmp_path, "").raw == first.raw
    check_secret(first, state)
    check_secret(first, state)
    with pytest.raises(ConfigError, match="does not match"):
        check_secret(ServerSecret(b"x" * 48), state)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_secret(tmp_path, "LT_SECRET", env={"LT_SECRET": "short"})
    from_env = load_secret(tmp_path, "LT_SECRET", env={"LT_SECRET": "k" * 40})
    assert from_env.raw == b"k" * 40


def test_rate_limits_count_requests_and_tokens_per_key() -> None:
    now = [0.0]
    limits = RateLimits(clock=lambda: now[0])
    keys = ring(MemoryStateStore())
    p = keys.authenticate(keys.create(KeySpec(role="gateway", rpm=2, tpm=100)).key, "bearer")
    assert p is not None
    assert limits.admit(p) is None and limits.admit(p) is None
    assert "2 requests per minute" in (limits.admit(p) or "")
    now[0] = 61.0
    assert limits.admit(p) is None
    limits.spent(p, 150)
    assert "100 tokens per minute" in (limits.admit(p) or "")
    now[0] = 122.0
    assert limits.admit(p) is None
