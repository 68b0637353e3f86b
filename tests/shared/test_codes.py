import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codes import (
    CODE_ALPHABET,
    CODE_LENGTH,
    InvalidCode,
    PickupCode,
    generate_code,
    normalize_code,
)


def test_alphabet_has_no_lookalikes():
    for ch in "O0I1L":
        assert ch not in CODE_ALPHABET
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET)


def test_generated_codes_use_the_alphabet_and_vary():
    codes = {generate_code() for _ in range(2000)}
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)
    # 2000 draws from 887M: a repeat would mean the generator is broken.
    assert len(codes) == 2000


@given(st.text(alphabet=CODE_ALPHABET, min_size=6, max_size=6))
def test_normalize_accepts_typed_variants(code):
    typed = f" {code[:3].lower()}-{code[3:]} "
    assert normalize_code(typed) == code
    assert PickupCode.parse(typed).value == code


@pytest.mark.parametrize(
    ("raw", "match"),
    [("ABC12", "6 characters"), ("ABCDEFG", "6 characters"), ("ABCDE0", "never contain"),
     ("OOOOOO", "never contain"), ("ABC$EF", "cannot contain")],
)  # fmt: skip
def test_normalize_refuses_bad_codes(raw, match):
    with pytest.raises(InvalidCode, match=match):
        normalize_code(raw)


def test_pickup_code_refuses_unnormalized_value():
    with pytest.raises(InvalidCode):
        PickupCode("abcdef")


def test_the_cloud_and_the_kiosk_hash_a_code_the_same_way():
    from kiosk.store.code_hash import CodeHasher
    from shared.codes import code_hash

    secret = b"a-kiosk-code-secret-0123"
    code = PickupCode.parse("abc-234")
    assert code_hash(secret, code) == CodeHasher(secret).hash(code)
    assert len(code_hash(secret, code)) == 64
    assert code_hash(secret, code) != code_hash(b"another-secret-0123456", code)
