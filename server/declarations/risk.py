"""Risk rules as data: the level of a declaration and the high-risk group.

The rules live in ``rules.yaml`` beside this file (or ``ISOCHECK_RISK_RULES_FILE``); this module
only evaluates them. :func:`evaluate` is a pure function of the declaration, the person's recent
history and their high-risk flag, so it is tested table by table without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from server.core.enums import RiskLevel

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
ORDER = [RiskLevel.green, RiskLevel.yellow, RiskLevel.orange, RiskLevel.red]
RANK = {level: i for i, level in enumerate(ORDER)}

DECLARATION_CONDITIONS = {
    "symptoms_any",
    "symptom_count_at_least",
    "spo2_at_most",
    "temperature_at_least",
    "heart_rate_at_least",
    "high_risk",
    "spo2_drop_24h_at_least",
    "fever_days_more_than",
}
GROUP_CONDITIONS = {"age_at_least", "comorbidity_count_at_least", "comorbidities_any", "pregnant"}


class RulesError(ValueError):
    """The rules file is malformed; the message names the rule and the key."""


@dataclass(frozen=True)
class Rule:
    id: str
    when: dict[str, Any]
    vi: str
    en: str
    level: RiskLevel | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    high_risk_group: tuple[Rule, ...]
    advice: dict[RiskLevel, dict[str, str]]
    fever_threshold_c: float


@dataclass(frozen=True)
class Observation:
    """One declaration as the rules see it (units: °C, %, beats/min)."""

    symptoms: frozenset[str] = frozenset()
    temperature_c: float | None = None
    spo2: int | None = None
    heart_rate: int | None = None


@dataclass(frozen=True)
class History:
    """What the trend rules need from earlier declarations."""

    #: Highest SpO2 declared in the 24 h before this declaration (None if none).
    max_spo2_24h: int | None = None
    #: Distinct local dates with fever before this declaration (within the isolation).
    fever_dates: frozenset[date] = frozenset()


@dataclass
class Assessment:
    level: RiskLevel
    fired: list[dict[str, str]] = field(default_factory=list)
    advice: dict[str, str] = field(default_factory=dict)


def _rule(raw: dict[str, Any], allowed: set[str], *, needs_level: bool) -> Rule:
    rid = raw.get("id") or "?"
    when = raw.get("when") or {}
    unknown = set(when) - allowed
    if not when or unknown:
        raise RulesError(f"rule {rid}: unknown or missing conditions {sorted(unknown) or '(none)'}")
    level = None
    if needs_level:
        try:
            level = RiskLevel(raw["level"])
        except (KeyError, ValueError) as exc:
            raise RulesError(
                f"rule {rid}: level must be one of {[x.value for x in ORDER]}"
            ) from exc
    if not raw.get("vi") or not raw.get("en"):
        raise RulesError(f"rule {rid}: needs a Vietnamese (vi) and an English (en) text")
    return Rule(id=rid, when=dict(when), vi=raw["vi"], en=raw["en"], level=level)


def parse_rules(data: dict[str, Any]) -> RuleSet:
    if data.get("version") != 1:
        raise RulesError("rules file: version must be 1")
    rules = tuple(_rule(r, DECLARATION_CONDITIONS, needs_level=True) for r in data.get("rules", []))
    group = tuple(
        _rule(r, GROUP_CONDITIONS, needs_level=False) for r in data.get("high_risk_group", [])
    )
    ids = [r.id for r in rules + group]
    if len(ids) != len(set(ids)):
        raise RulesError("rules file: rule ids must be unique")
    advice = {RiskLevel(k): v for k, v in (data.get("advice") or {}).items()}
    if set(advice) != set(ORDER):
        raise RulesError("rules file: advice needs a text for every level")
    return RuleSet(
        rules=rules,
        high_risk_group=group,
        advice=advice,
        fever_threshold_c=float(data.get("fever_threshold_c", 37.5)),
    )


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> RuleSet:
    """The rules of ``path`` (default: the packaged MoH-based set), parsed and checked once."""
    with open(path or DEFAULT_RULES, encoding="utf-8") as fh:
        return parse_rules(yaml.safe_load(fh))


def has_fever(obs: Observation, threshold_c: float) -> bool:
    return "fever" in obs.symptoms or (
        obs.temperature_c is not None and obs.temperature_c >= threshold_c
    )


def _holds(
    cond: str,
    value: Any,
    obs: Observation,
    hist: History,
    high_risk: bool,
    today: date,
    fever_c: float,
) -> bool:
    if cond == "symptoms_any":
        return bool(obs.symptoms & set(value))
    if cond == "symptom_count_at_least":
        return len(obs.symptoms) >= value
    if cond == "spo2_at_most":
        return obs.spo2 is not None and obs.spo2 <= value
    if cond == "temperature_at_least":
        return obs.temperature_c is not None and obs.temperature_c >= value
    if cond == "heart_rate_at_least":
        return obs.heart_rate is not None and obs.heart_rate >= value
    if cond == "high_risk":
        return high_risk is bool(value)
    if cond == "spo2_drop_24h_at_least":
        return (
            obs.spo2 is not None
            and hist.max_spo2_24h is not None
            and hist.max_spo2_24h - obs.spo2 >= value
        )
    if cond == "fever_days_more_than":
        days = set(hist.fever_dates) | ({today} if has_fever(obs, fever_c) else set())
        return has_fever(obs, fever_c) and len(days) > value
    raise RulesError(f"unknown condition {cond}")  # parse_rules prevents this


def evaluate(
    obs: Observation,
    *,
    history: History = History(),
    high_risk: bool = False,
    today: date,
    rules: RuleSet | None = None,
) -> Assessment:
    """The level of one declaration: the highest level among the rules that fire (green when
    none does), the fired rules with their texts, and the advice for that level."""
    rules = rules or load_rules()
    fired = [
        r
        for r in rules.rules
        if all(
            _holds(k, v, obs, history, high_risk, today, rules.fever_threshold_c)
            for k, v in r.when.items()
        )
    ]
    level = max((r.level for r in fired), key=RANK.__getitem__, default=RiskLevel.green)
    fired.sort(key=lambda r: -RANK[r.level])
    return Assessment(
        level=level,
        fired=[{"id": r.id, "level": r.level.value, "vi": r.vi, "en": r.en} for r in fired],
        advice=dict(rules.advice[level]),
    )


def age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def high_risk_reasons(
    *,
    birth: date | None,
    comorbidities: Iterable[str],
    pregnant: bool,
    today: date,
    rules: RuleSet | None = None,
) -> list[dict[str, str]]:
    """The high-risk-group rules a person meets (empty: not in the group)."""
    rules = rules or load_rules()
    age = age_on(birth, today)
    comorb = set(comorbidities)

    def holds(cond: str, value: Any) -> bool:
        if cond == "age_at_least":
            return age is not None and age >= value
        if cond == "comorbidity_count_at_least":
            return len(comorb) >= value
        if cond == "comorbidities_any":
            return bool(comorb & set(value))
        if cond == "pregnant":
            return pregnant is bool(value)
        raise RulesError(f"unknown condition {cond}")

    return [
        {"id": r.id, "vi": r.vi, "en": r.en}
        for r in rules.high_risk_group
        if all(holds(k, v) for k, v in r.when.items())
    ]


def max_level(levels: Sequence[RiskLevel]) -> RiskLevel:
    return max(levels, key=RANK.__getitem__, default=RiskLevel.green)
