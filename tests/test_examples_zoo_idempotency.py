"""The zoo's writes with an Idempotency-Key, on both engines (the keys live in the zoo's database)."""

from __future__ import annotations

import pytest

from tests.conftest import make_client
from tests.test_examples_zoo import AUTH, READ_TOKEN, db_state, new_app, send_json
from tests.zoo_pg_fixtures import pg_cluster, zoo_db, zoo_dbs  # noqa: F401



def test_a_retried_create_and_patch_are_answered_once(zoo_db: str) -> None:
    app = new_app(zoo_db)
    try:
        client = make_client(app)
        key = {**AUTH, "Idempotency-Key": "zoo-create-1"}
        first = send_json(client, "POST", "/v1/zoos", {"name": "Once", "city": "Here"}, headers=key)
        assert first.status_int == 201
        state = db_state(app)
        again = send_json(client, "POST", "/v1/zoos", {"name": "Once", "city": "Here"}, headers=key)
        assert again.status_int == 201 and again.json == first.json
        assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == first.headers["Location"]
        assert again.headers["ETag"] == first.headers["ETag"]
        other = send_json(client, "POST", "/v1/zoos", {"name": "Twice", "city": "Here"}, headers=key)
        assert other.status_int == 422 and "another request" in other.json["error"]
        assert {k: v for k, v in db_state(app).items() if k.startswith("zoo")} == \
            {k: v for k, v in state.items() if k.startswith("zoo")}  # nothing changed
        patch = {**AUTH, "Idempotency-Key": "zoo-patch-1"}
        url = first.json["links"]["self"]
        changed = send_json(client, "PATCH", url, {"city": "There"}, headers=patch)
        replayed = send_json(client, "PATCH", url, {"city": "There"}, headers=patch)
        assert changed.status_int == replayed.status_int == 200 and replayed.json == changed.json
        assert replayed.headers["Idempotent-Replayed"] == "true"
    finally:
        app.close()


def test_refusals_before_the_key_is_claimed_do_not_use_it(zoo_db: str) -> None:
    """A 401/403 is answered before the key is looked at: the same key then works with the right token."""
    app = new_app(zoo_db)
    try:
        client = make_client(app)
        body = {"name": "Guarded", "city": "Here"}
        refused = send_json(client, "POST", "/v1/zoos", body,
                            headers={"Authorization": f"Bearer {READ_TOKEN}", "Idempotency-Key": "guarded"})
        assert refused.status_int == 403
        created = send_json(client, "POST", "/v1/zoos", body, headers={**AUTH, "Idempotency-Key": "guarded"})
        assert created.status_int == 201 and "Idempotent-Replayed" not in created.headers
        bad = send_json(client, "POST", "/v1/zoos", body, headers={**AUTH, "Idempotency-Key": "not a key"})
        assert bad.status_int == 400 and bad.json["error"].startswith("Idempotency-Key must be")
    finally:
        app.close()
