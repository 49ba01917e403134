from __future__ import annotations

import pytest

from covet.auth import PasswordPolicy, WeakPasswordError, validate_password
from covet.auth.passwords import load_common_passwords
from covet.exceptions import ImproperlyConfigured


def test_shipped_common_password_list():
    common = load_common_passwords()
    assert 2500 <= len(common) <= 5000
    for password in ("123456", "password", "qwerty123", "iloveyou", "letmein", "monkey123"):
        assert password in common
    assert all(entry == entry.lower().strip() for entry in common)


@pytest.mark.parametrize("password", ["password", "Password1", " QWERTY123 ", "iloveyou!"])
def test_common_passwords_are_refused(password):
    with pytest.raises(WeakPasswordError, match="too common"):
        validate_password(password)


def test_minimum_length_is_eight_characters():
    with pytest.raises(WeakPasswordError, match="at least 8 characters") as info:
        validate_password("x7#kq2!")
    assert info.value.messages == [
        "This password is too short. It must contain at least 8 characters."
    ]
    validate_password("x7#kq2!z")


def test_no_composition_rules_and_long_passphrases_are_allowed():
    validate_password("correct horse battery staple")  # no digit, no capital, no symbol
    validate_password("zzzzqqqqwwwweeee")
    passphrase = "a sentence I will remember " * 4
    assert len(passphrase) >= 64
    validate_password(passphrase)
    validate_password("ж" * 2048)  # 4096 bytes of UTF-8


def test_over_4096_bytes_is_refused():
    with pytest.raises(WeakPasswordError, match="at most 4096 bytes"):
        validate_password("ж" * 2049)


def test_similar_to_the_users_attributes():
    user = {"email": "margaret.hamilton@example.com", "username": "mhamilton"}
    with pytest.raises(WeakPasswordError, match="too similar to your email"):
        validate_password("margaret.hamilton", user)
    with pytest.raises(WeakPasswordError, match="too similar to your username"):
        validate_password("mhamilton1", user)
    validate_password("apollo guidance computer", user)

    class Person:
        first_name = "Grace"
        email = "admiral@navy.mil"

    with pytest.raises(WeakPasswordError, match="first name"):
        validate_password("Grace123", Person())


def test_every_problem_is_reported():
    with pytest.raises(WeakPasswordError) as info:
        validate_password("qwerty", {"username": "qwerty"})
    assert len(info.value.messages) == 3


def test_custom_policy():
    policy = PasswordPolicy(min_length=15, common_passwords=frozenset({"tr0ub4dor&3xyzw"}))
    with pytest.raises(WeakPasswordError, match="at least 15"):
        validate_password("tr0ub4dor&3", policy=policy)
    with pytest.raises(WeakPasswordError, match="too common"):
        policy.validate("Tr0ub4dor&3xyzw")
    assert policy.problems("password-password") == []  # the shipped list is replaced
    assert PasswordPolicy(check_common=False).problems("password") == []


@pytest.mark.parametrize(
    "options",
    [{"min_length": 0}, {"min_length": True}, {"max_bytes": 5000}, {"max_similarity": 0.0}],
)
def test_policy_options_are_validated(options):
    with pytest.raises(ImproperlyConfigured):
        PasswordPolicy(**options)
