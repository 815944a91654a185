from skillrelay_common import ids


def test_ids_carry_their_type_prefix_and_are_unique() -> None:
    made = {ids.new_id(ids.SKILLSET) for _ in range(1000)}
    assert len(made) == 1000
    assert all(ids.has_prefix(value, "skillset") for value in made)
    assert not ids.has_prefix("skillset_", "skillset")


def test_secret_hash_round_trip_is_constant_time_comparable() -> None:
    secret = ids.new_secret("sr_mcp")
    assert secret.startswith("sr_mcp_") and len(secret) >= 7 + 43
    digest = ids.hash_secret(secret)
    assert ids.secret_matches(secret, digest)
    assert not ids.secret_matches(secret + "x", digest)
