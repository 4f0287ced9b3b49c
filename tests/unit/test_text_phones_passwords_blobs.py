"""Pure helpers: search folding, phone normalisation, password hashing, the content-addressed store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hub.accounts.passwords import hash_password, verify_password
from hub.blobs import BlobStore, TooLarge
from hub.crm.projects import normalise_amount
from hub.phones import to_e164
from hub.text import fold, like_pattern


def test_fold_and_like_pattern() -> None:
    assert fold("  Café ZOË ") == "cafe zoe"
    assert like_pattern("50%_off") == "%50\\%\\_off%"
    assert like_pattern("Zoë") == "%zoe%"  # stored search names are folded the same way


@pytest.mark.parametrize("typed", ["+31 20 123 4567", "0031201234567", "020-1234567", "(020) 123 45 67"])
def test_dutch_numbers_become_one_e164(typed: str) -> None:
    assert to_e164(typed) == "+31201234567"


@pytest.mark.parametrize("typed", ["+31 6 12345678", "0031 6 1234 5678", "06-12345678", "06 1234 5678"])
def test_dutch_mobile_numbers_become_one_e164(typed: str) -> None:
    assert to_e164(typed) == "+31612345678"


def test_not_a_phone_number() -> None:
    assert to_e164("12") is None and to_e164("call me") is None and to_e164("") is None
    assert to_e164("+49 30 1234567") == "+49301234567"


def test_passwords_are_salted_and_verified() -> None:
    first, second = hash_password("geheim wachtwoord"), hash_password("geheim wachtwoord")
    assert first != second and "geheim" not in first
    assert verify_password(first, "geheim wachtwoord") and not verify_password(first, "Geheim wachtwoord")
    assert not verify_password("garbage", "x")


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("12.500,50", "12500.50"), ("12,500.50", "12500.50"), ("1250,5", "1250.5"), ("1.250", "1250"), ("99.95", "99.95")],
)
def test_amounts_as_people_type_them(typed: str, amount: str) -> None:
    assert normalise_amount(typed) == amount


def test_blob_store_deduplicates_and_refuses_too_large(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha, size = store.put(io.BytesIO(b"hello"))
    assert store.put(io.BytesIO(b"hello")) == (sha, size) and size == 5
    assert store.open(sha).read() == b"hello"
    with pytest.raises(TooLarge):
        store.put(io.BytesIO(b"x" * 100), max_bytes=10)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != sha]
    assert leftovers == []  # nothing half-written stays behind
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
