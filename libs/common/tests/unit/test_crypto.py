import pytest

from skillrelay_common.crypto import SecretBox, SecretBoxError


def test_round_trip_and_purpose_separation() -> None:
    box = SecretBox("k" * 32, "oauth-client-secret")
    ciphertext = box.encrypt("s3cr3t")
    assert "s3cr3t" not in ciphertext
    assert box.decrypt(ciphertext) == "s3cr3t"
    with pytest.raises(SecretBoxError):
        SecretBox("k" * 32, "signing-key").decrypt(ciphertext)
    with pytest.raises(SecretBoxError):
        SecretBox("other", "oauth-client-secret").decrypt(ciphertext)
