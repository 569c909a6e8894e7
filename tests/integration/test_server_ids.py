"""Back-office behaviour through the Flask test client: clients, IDs, policy, roles and the error shape."""

from __future__ import annotations

from tests.integration.server_support import error_code, world  # noqa: F401  (fixture)


def test_an_id_differing_only_in_case_is_taken(world):
    world.add_client("Anna", "AB12")
    reply = world.staff("POST", "/v1/clients", json={"name": "Bob", "client_id": "ab12"})
    assert reply.status_code == 409 and error_code(reply) == "id_taken"


def test_an_id_breaking_the_rules_is_refused_with_422(world):
    for bad in ("AB-12", "abc", "x" * 33, "ÄB12"):
        reply = world.staff("POST", "/v1/clients", json={"name": "Anna", "client_id": bad})
        assert reply.status_code == 422 and error_code(reply) == "invalid_id", bad
    assert world.staff("GET", "/v1/clients").json["items"] == []


def test_setting_an_id_on_a_client_with_one_needs_replace(world):
    anna = world.add_client("Anna", "AB12")
    path = f"/v1/clients/{anna['ref']}/client-id"
    refused = world.staff("PUT", path, json={"client_id": "CD34"})
    assert refused.status_code == 409 and error_code(refused) == "id_exists"
    replaced = world.staff("PUT", path, json={"client_id": "CD34", "replace": True})
    assert replaced.json["client"]["client_id"] == "CD34" and replaced.json["previous_client_id"] == "AB12"
    assert world.add_client("Bob", "ab12")["client_id"] == "ab12"  # the old ID is free again


def test_setting_the_same_id_again_is_a_no_op(world):
    anna = world.add_client("Anna", "AB12")
    reply = world.staff("PUT", f"/v1/clients/{anna['ref']}/client-id", json={"client_id": "AB12"})
    assert reply.status_code == 200 and reply.json["changed"] is False


def test_generated_ids_follow_the_policy_and_replacing_needs_confirmation(world):
    world.admin("PUT", "/v1/policy", json={"auto_generate_ids": False, "id_min_length": 4, "id_max_length": 32,
                                          "generated_length": 10, "generated_alphabet": "ABCDEF2345"})
    anna = world.add_client("Anna")
    path = f"/v1/clients/{anna['ref']}/client-id/generate"
    first = world.staff("POST", path, json={}).json["client"]["client_id"]
    assert len(first) == 10 and set(first) <= set("ABCDEF2345")
    refused = world.staff("POST", path, json={})
    assert refused.status_code == 409 and error_code(refused) == "id_exists"
    second = world.staff("POST", path, json={"replace": True, "length": 6}).json
    assert len(second["client"]["client_id"]) == 6 and second["previous_client_id"] == first


def test_generation_reports_an_exhausted_id_space(world):
    world.admin("PUT", "/v1/policy", json={"auto_generate_ids": False, "id_min_length": 1, "id_max_length": 32,
                                          "generated_length": 1, "generated_alphabet": "AB"})
    world.add_client("Anna", "A")
    world.add_client("Bob", "b")
    carl = world.add_client("Carl")
    reply = world.staff("POST", f"/v1/clients/{carl['ref']}/client-id/generate", json={})
    assert reply.status_code == 409 and error_code(reply) == "id_space_exhausted"


def test_a_bad_alphabet_or_length_is_refused(world):
    anna = world.add_client("Anna")
    path = f"/v1/clients/{anna['ref']}/client-id/generate"
    assert error_code(world.staff("POST", path, json={"alphabet": "aA"})) == "invalid_alphabet"
    assert error_code(world.staff("POST", path, json={"length": 40})) == "invalid_id"


def test_bulk_generation_never_overwrites_and_counts(world):
    anna, bob = world.add_client("Anna", "AB12"), world.add_client("Bob")
    world.add_client("Carl")
    selected = world.staff("POST", "/v1/clients/generate-ids", json={"client_refs": [anna["ref"], bob["ref"]]})
    assert selected.json == {"generated": 1, "skipped": 1}
    everyone = world.staff("POST", "/v1/clients/generate-ids", json={"all": True})
    assert everyone.json == {"generated": 1, "skipped": 2}
    ids = [c["client_id"] for c in world.staff("GET", "/v1/clients").json["items"]]
    assert ids[0] == "AB12" and all(ids) and len({i.lower() for i in ids}) == 3


def test_bulk_generation_with_an_unknown_ref_generates_nothing(world):
    bob = world.add_client("Bob")
    reply = world.staff("POST", "/v1/clients/generate-ids", json={"client_refs": [bob["ref"], 999]})
    assert reply.status_code == 404 and error_code(reply) == "client_not_found"
    assert world.staff("GET", f"/v1/clients/{bob['ref']}").json["client_id"] is None
    both = world.staff("POST", "/v1/clients/generate-ids", json={"client_refs": [bob["ref"]], "all": True})
    assert both.status_code == 400 and error_code(both) == "invalid_request"


def test_auto_generation_policy_gives_new_clients_an_id(world):
    assert world.add_client("Anna")["client_id"] is None
    policy = world.staff("GET", "/v1/policy").json | {"auto_generate_ids": True}
    assert world.admin("PUT", "/v1/policy", json=policy).json["auto_generate_ids"] is True
    assert len(world.add_client("Bob")["client_id"]) == policy["generated_length"]


def test_an_inconsistent_policy_is_refused_and_staff_may_not_change_it(world):
    policy = world.staff("GET", "/v1/policy").json
    bad = world.admin("PUT", "/v1/policy", json=policy | {"id_min_length": 10, "generated_length": 8})
    assert bad.status_code == 422 and error_code(bad) == "invalid_policy"
    assert error_code(world.staff("PUT", "/v1/policy", json=policy)) == "forbidden"
    assert world.staff("GET", "/v1/policy").json == policy


def test_policy_length_rules_apply_to_new_ids(world):
    policy = world.staff("GET", "/v1/policy").json | {"id_min_length": 6, "generated_length": 8}
    world.admin("PUT", "/v1/policy", json=policy)
    assert error_code(world.staff("POST", "/v1/clients", json={"name": "A", "client_id": "AB123"})) == "invalid_id"


def test_clients_are_found_by_id_case_insensitively_and_by_name(world):
    world.add_client("Anna Meyer", "AB12")
    world.add_client("Bob Novak", "CD34", status="inactive")
    by_id = world.staff("GET", "/v1/clients", query_string={"client_id": "ab12"}).json["items"]
    assert [c["name"] for c in by_id] == ["Anna Meyer"]
    assert [c["name"] for c in world.staff("GET", "/v1/clients", query_string={"q": "nOVak"}).json["items"]] == [
        "Bob Novak"]
    inactive = world.staff("GET", "/v1/clients", query_string={"status": "inactive"}).json["items"]
    assert [c["client_id"] for c in inactive] == ["CD34"]


def test_clients_page_by_keyset(world):
    for n in range(5):
        world.add_client(f"Client {n}")
    first = world.staff("GET", "/v1/clients", query_string={"limit": 3}).json
    second = world.staff("GET", "/v1/clients", query_string={"limit": 3, "after": first["next_after"]}).json
    assert [c["name"] for c in first["items"] + second["items"]] == [f"Client {n}" for n in range(5)]
    assert second["next_after"] is None


def test_client_status_can_be_changed(world):
    anna = world.add_client("Anna", "AB12")
    reply = world.staff("PATCH", f"/v1/clients/{anna['ref']}", json={"status": "inactive"})
    assert reply.json["status"] == "inactive" and reply.json["name"] == "Anna"
    assert error_code(world.staff("PATCH", "/v1/clients/99", json={"status": "active"})) == "client_not_found"


def test_clearing_an_id_frees_it(world):
    anna = world.add_client("Anna", "AB12")
    cleared = world.staff("DELETE", f"/v1/clients/{anna['ref']}/client-id")
    assert cleared.json["client"]["client_id"] is None and cleared.json["previous_client_id"] == "AB12"
    assert world.add_client("Bob", "AB12")["client_id"] == "AB12"


def test_tokens_are_checked_and_roles_enforced(world):
    assert error_code(world.call(None, "GET", "/v1/clients")) == "unauthorized"
    assert error_code(world.call("not-a-token", "GET", "/v1/clients")) == "unauthorized"
    assert error_code(world.device("GET", "/v1/clients")) == "forbidden"
    assert error_code(world.staff("GET", "/v1/device/roster")) == "forbidden"
    assert error_code(world.staff("POST", "/v1/locations", json={"name": "East"})) == "forbidden"
    made = world.admin("POST", "/v1/staff-tokens", json={"name": "eve", "role": "staff"})
    assert world.call(made.json["token"], "GET", "/v1/clients").status_code == 200


def test_tokens_are_stored_only_as_hashes(world, tmp_path):
    raw = (tmp_path / "server.db").read_bytes() + (tmp_path / "server.db-wal").read_bytes()
    for token in (world.admin_token, world.staff_token, world.device_token):
        assert len(token) >= 43 and token.encode() not in raw


def test_locations_are_listed_and_added_once(world):
    assert world.admin("POST", "/v1/locations", json={"name": "East"}).status_code == 201
    assert error_code(world.admin("POST", "/v1/locations", json={"name": "East"})) == "location_exists"
    names = [loc["name"] for loc in world.staff("GET", "/v1/locations").json["items"]]
    assert names == ["Main", "North", "East"]


def test_malformed_requests_get_the_error_shape(world):
    assert error_code(world.staff("POST", "/v1/clients", json={"nme": "x"})) == "invalid_request"
    assert error_code(world.staff("POST", "/v1/clients", data="name=x")) == "unsupported_media_type"
    assert error_code(world.staff("GET", "/v1/nowhere")) == "not_found"
    assert error_code(world.staff("DELETE", "/v1/policy")) == "method_not_allowed"
    assert error_code(world.staff("GET", "/v1/clients", query_string={"limit": 0})) == "invalid_request"
    assert error_code(world.staff("GET", "/v1/clients", query_string={"limt": 5})) == "invalid_request"
    not_utf8 = world.staff("POST", "/v1/clients", data=b'{"name": "\xff"}', content_type="application/json")
    assert not_utf8.status_code == 400 and error_code(not_utf8) == "invalid_request"


def test_integral_floats_count_as_integers(world):
    anna = world.add_client("Anna")
    reply = world.staff("POST", f"/v1/clients/{anna['ref']}/client-id/generate", json={"length": 9.0})
    assert reply.status_code == 200 and len(reply.json["client"]["client_id"]) == 9


def test_a_blank_name_is_refused(world):
    for blank in (" ", "\x1f", "\t "):
        assert error_code(world.staff("POST", "/v1/clients", json={"name": blank})) == "invalid_request"
