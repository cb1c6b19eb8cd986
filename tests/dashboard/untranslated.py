"""Finding English and raw codes in text that should be Vietnamese (the ``vi`` pages and
problems): shared by the dashboard's page walk and the API's problem walk."""

from __future__ import annotations

import re

from server.dashboard import i18n
from server.declarations.schemas import Symptom
from server.http import problem as errors

#: snake_case or dotted lowercase identifiers: codes (``bluish_lips``, ``person.create``).
CODE = re.compile(r"(?<![\w./@-])[a-z][a-z0-9]*(?:[._][a-z0-9]+)+(?![\w/@-])")
WORD = re.compile(r"[A-Za-z]{4,}")
#: Not words for people: e-mail addresses, URLs, file names, and a JSON example (``{"k": 2}``)
#: beside the schedule's JSON field.
NOISE = re.compile(
    r"\S+@\S+|https?://\S+|\b\w+\.(?:jpg|png|webp|json|csv|ndjson)\b|\{\"[^}]*\}"
)


#: pydantic's own English (``Field required``, ``Input should be …``), which the catalogue lacks.
PYDANTIC = {"field", "required", "input", "should", "valid", "extra", "inputs", "permitted",
            "value", "error", "characters", "least", "most", "greater", "less", "equal", "than",
            "string", "integer", "number", "unable", "parse", "datetime", "date", "time", "have"}


def _words(texts) -> set[str]:
    return {w.lower() for t in texts for w in WORD.findall(t)}


def english_only_words() -> set[str]:
    """Words of the English texts that no Vietnamese text uses (``SpO2``, ``isocheck``, ``FHIR``
    appear in both, so they do not count), plus the symptom codes."""
    vi, en = [], []
    for a, b in i18n.TEXTS.values():
        vi.append(a)
        en.append(b)
    for group in i18n.LABELS.values():
        for a, b in group.values():
            vi.append(a)
            en.append(b)
    for texts in errors.MESSAGES.values():
        if "vi" in texts:
            vi.extend(texts["vi"])
        if "en" in texts:
            en.extend(texts["en"])
    codes = {s.value for s in Symptom if "_" not in s.value}
    return (_words(en) | codes | PYDANTIC) - _words(vi)


def untranslated(text: str, english: set[str] | None = None) -> list[str]:
    """Codes and English-only words in ``text`` (e-mail addresses, URLs and file names aside)."""
    english = english if english is not None else english_only_words()
    clean = NOISE.sub(" ", text)
    found = CODE.findall(clean)
    found += [w for w in WORD.findall(clean) if w.lower() in english]
    return sorted(set(found))
