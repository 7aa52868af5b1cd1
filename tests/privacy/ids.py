"""Synthetic identifiers with correct check digits, computed constructively (not with the
recognizers' validators, so the tests check one against the other), and one-digit typos."""

from __future__ import annotations

import random
import string

# BBAN layouts: (letters, digits) for a few countries, enough to cover the length table's
# common cases.
BBAN_LAYOUTS = {
    "NL": (4, 10), "DE": (0, 18), "GB": (4, 14), "FR": (0, 23), "BE": (0, 12),
    "ES": (0, 20), "IT": (1, 22), "AT": (0, 16), "CH": (0, 17), "PL": (0, 24),
}  # fmt: skip
CARD_PREFIXES = {
    "visa": ("4", 16), "mastercard": ("53", 16), "mastercard2": ("2223", 16),
    "amex": ("37", 15), "discover": ("6011", 16), "jcb": ("3530", 16),
}  # fmt: skip


def iban(rng: random.Random, country: str = "NL", spaced: bool = True) -> str:
    letters, digits = BBAN_LAYOUTS[country]
    bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + "".join(
        rng.choice(string.digits) for _ in range(digits)
    )
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if spaced else compact


def luhn_digit(partial: str) -> str:
    total = 0
    for index, ch in enumerate(reversed(partial)):
        value = int(ch) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def card(rng: random.Random, brand: str = "visa", separator: str = " ") -> str:
    prefix, length = CARD_PREFIXES[brand]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    groups = [4, 6, 5] if length == 15 else [4, 4, 4, 4]
    parts, at = [], 0
    for size in groups:
        parts.append(number[at : at + size])
        at += size
    return separator.join(parts)


def ssn(rng: random.Random, separator: str = "-") -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{separator}{rng.randint(1, 99):02d}{separator}{rng.randint(1, 9999):04d}"


def bsn(rng: random.Random) -> str:
    while True:
        head = [rng.randint(0, 9) for _ in range(8)]
        check = sum(d * w for d, w in zip(head, range(9, 1, -1), strict=True)) % 11
        if check < 10 and any(head):
            return "".join(map(str, head)) + str(check)


def typo(rng: random.Random, value: str) -> str:
    """`value` with one digit (not the first character) changed to another digit."""
    positions = [i for i, ch in enumerate(value) if ch.isdigit() and i > 0]
    at = rng.choice(positions)
    new = rng.choice([d for d in string.digits if d != value[at]])
    return value[:at] + new + value[at + 1 :]
