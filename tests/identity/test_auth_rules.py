"""The sign-up rules as plain functions: what they accept, and that no input makes them slow."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from rhime.auth import rules

# A hostile input may cost this many times a valid one of about the same length. Linear checks
# stay within a few times; a backtracking pattern costs thousands at a few dozen characters.
RATIO = 20
ROUNDS = 5


def benign_email(length: int) -> str:
    return "a" * (length - 7) + "@ex.com"


def benign_user_name(length: int) -> str:
    return "a" * length


def benign_password(length: int) -> str:
    return ("a1!" * length)[:length]


# Near misses, shortest first: before checks were linear, the first email case alone took
# a fraction of a second, and each two more characters four times as long.
HOSTILE: dict[str, tuple[Callable[[str], str], Callable[[int], str], list[str]]] = {
    "email": (
        rules.email,
        benign_email,
        [
            "a" * 22 + "!",
            "a" * 40 + "!",
            "a." * 30 + "a!",
            "a-" * 60 + "@b.co",
            "a@" + "b." * 120 + "c",
            "a@" + "b-" * 120 + "co!",
            "a" * 120 + "@" + "b" * 120 + "!",
            "a" * 245 + "@b.c",
            "a.b" * 80 + "@@b.co",
        ],
    ),
    "user_name": (
        rules.user_name,
        benign_user_name,
        ["a" * 19 + "!", "a." * 9 + "a.", "_" * 19 + ".", "a" * 9 + ".." + "a" * 9],
    ),
    "password": (
        rules.password,
        benign_password,
        [
            "a1" * 7,
            "1" * 14,
            "a1!" * 42 + "\x00",
            "a1!" * 42 + "\n",
            " " * 127 + "\x7f",
        ],
    ),
}


def rejects(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return True
    return False


def per_call(check: Callable[[str], str], value: str, calls: int, budget: float) -> float:
    """The best of a few rounds of `calls` calls, in seconds per call; a round that goes past
    `budget` seconds stops there and counts as infinitely slow."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            rejects(check, value)
            if time.perf_counter() - started > budget:
                break
        else:
            best = min(best, (time.perf_counter() - started) / calls)
    return best


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_input_makes_a_rule_slow(name: str) -> None:
    check, benign, hostile = HOSTILE[name]
    for value in hostile:
        assert rejects(check, value), f"{name} accepted the near miss {value!r}"
        normal = benign(len(value))
        assert not rejects(check, normal), normal
        # enough calls for a round to take a millisecond or so: timer noise stays small
        calls = max(50, int(1e-3 / max(per_call(check, normal, 10, 1.0), 1e-7)))
        usual = per_call(check, normal, calls, 1.0)
        worst = per_call(check, value, calls, RATIO * usual * calls)
        assert worst <= RATIO * usual, (
            f"{name}({value!r}) took {worst / usual:.0f} times as long as a valid value"
        )


@pytest.mark.parametrize(
    "value",
    ["ana@example.com", "a.b-c_d@mail-box.example.co", "x@y.io", "  Ana@Example.COM "],
)
def test_emails_the_original_accepted(value: str) -> None:
    assert rules.email(value) == value.strip().lower()


@pytest.mark.parametrize(
    "value",
    [
        "not-an-email",
        "a@b.toolong",
        "a@b.c",
        "a@b",
        "@b.co",
        "a@.co",
        "a..b@c.co",
        "a.@b.co",
        "-a@b.co",
        "a@b.co-",
        "a@b.c-o",
        "a@b@c.co",
        "a b@c.co",
        "é@b.co",
        "a@b..co",
        "a" * 250 + "@b.co",
    ],
)
def test_emails_refused(value: str) -> None:
    assert rejects(rules.email, value)


@pytest.mark.parametrize("value", ["ab", "ana.music", "a_b.c9", "x" * 20, " ana "])
def test_user_names_accepted(value: str) -> None:
    assert rules.user_name(value) == value.strip()


@pytest.mark.parametrize(
    "value", ["a", "x" * 21, ".ana", "ana.", "an..a", "an a", "ana!", "anä", "an\na"]
)
def test_user_names_refused(value: str) -> None:
    assert rejects(rules.user_name, value)


@pytest.mark.parametrize(
    "value",
    [
        "s3cret!pw",
        "pw!12345",
        "tune$Up42 ok",
        "correct horse battery staple",  # a passphrase needs no digit or symbol
        "ünïcödé-pässwörd",
        "a1!" * 42 + "xy",
    ],
)
def test_passwords_accepted(value: str) -> None:
    assert rules.password(value) == value


@pytest.mark.parametrize(
    ("value", "because"),
    [
        ("s3cr!t", "8 to 128"),
        ("a1!" * 43, "8 to 128"),
        ("nospecial1", "a letter, a digit and a symbol"),
        ("nodigit!!", "a letter, a digit and a symbol"),
        ("12345678!", "a letter, a digit and a symbol"),
        ("has space1", "a letter, a digit and a symbol"),
        ("tab\there1!", "control characters"),
        ("a passphrase\x00with a nul", "control characters"),
    ],
)
def test_passwords_refused(value: str, because: str) -> None:
    with pytest.raises(ValueError, match=because):
        rules.password(value)
