"""The default risk rules, table by table, and the monotonicity property."""

from datetime import date, timedelta

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.enums import RiskLevel
from server.declarations import risk
from server.declarations.risk import History, Observation, RulesError, evaluate
from server.declarations.schemas import Symptom

TODAY = date(2026, 11, 24)
G, Y, O, R = RiskLevel.green, RiskLevel.yellow, RiskLevel.orange, RiskLevel.red  # noqa: E741


def obs(*symptoms, t=None, spo2=None, hr=None):
    return Observation(frozenset(symptoms), temperature_c=t, spo2=spo2, heart_rate=hr)


# (case, observation, history, high_risk, expected level, rules that must fire)
CASES = [
    ("nothing declared", obs(), History(), False, G, set()),
    ("normal values", obs(t=36.8, spo2=98, hr=80), History(), False, G, set()),
    ("spo2 96 is not severe", obs(spo2=96), History(), False, G, set()),
    # red: each severe sign alone
    ("dyspnea", obs("dyspnea"), History(), False, R, {"dyspnea", "symptoms"}),
    ("chest pain", obs("chest_pain"), History(), False, R, {"chest_pain", "symptoms"}),
    ("confusion", obs("confusion"), History(), False, R, {"confusion", "symptoms"}),
    ("bluish lips", obs("bluish_lips"), History(), False, R, {"bluish_lips", "symptoms"}),
    ("spo2 95", obs(spo2=95), History(), False, R, {"spo2_severe"}),
    ("spo2 88", obs(spo2=88), History(), False, R, {"spo2_severe"}),
    # orange: each warning sign alone
    ("high fever", obs(t=39.2), History(), False, O, {"high_fever", "fever"}),
    ("tachycardia", obs(hr=125), History(), False, O, {"tachycardia"}),
    ("spo2 falling 3 in 24h", obs(spo2=96), History(max_spo2_24h=99), False, O,
     {"spo2_falling"}),
    ("spo2 falling 2 is not enough", obs(spo2=97), History(max_spo2_24h=99), False, G, set()),
    ("fever on a 4th day", obs(t=38.0),
     History(fever_dates=frozenset(TODAY - timedelta(days=d) for d in (1, 2, 3))), False, O,
     {"fever_long", "fever"}),
    ("fever on a 3rd day only", obs(t=38.0),
     History(fever_dates=frozenset(TODAY - timedelta(days=d) for d in (1, 2))), False, Y,
     {"fever"}),
    ("fever history but none today", obs(t=36.6),
     History(fever_dates=frozenset(TODAY - timedelta(days=d) for d in (1, 2, 3, 4))), False, G,
     set()),
    ("high-risk with a symptom", obs("cough"), History(), True, O,
     {"high_risk_with_symptoms", "symptoms", "high_risk_group"}),
    # yellow
    ("a mild symptom", obs("cough"), History(), False, Y, {"symptoms"}),
    ("fever 37.5", obs(t=37.5), History(), False, Y, {"fever"}),
    ("high-risk, no symptoms", obs(spo2=98), History(), True, Y, {"high_risk_group"}),
    # combinations: the highest level wins and every rule is reported
    ("severe + warning + mild", obs("dyspnea", "cough", t=39.5, spo2=93, hr=130), History(),
     True, R, {"dyspnea", "spo2_severe", "high_fever", "tachycardia", "symptoms", "fever",
               "high_risk_group", "high_risk_with_symptoms"}),
    ("two warnings", obs(t=39.0, hr=120), History(), False, O,
     {"high_fever", "tachycardia", "fever"}),
]


@pytest.mark.parametrize("case,observation,history,high_risk,level,fired", CASES,
                         ids=[c[0] for c in CASES])
def test_default_rules(case, observation, history, high_risk, level, fired):
    result = evaluate(observation, history=history, high_risk=high_risk, today=TODAY)
    assert result.level is level
    assert {r["id"] for r in result.fired} == fired
    assert all(r["vi"] and r["en"] for r in result.fired)
    assert result.advice["vi"] and result.advice["en"]


def test_red_advice_says_call_115():
    result = evaluate(obs(spo2=90), today=TODAY)
    assert "115" in result.advice["vi"] and "115" in result.advice["en"]


def test_every_default_rule_can_fire():
    """No dead rule in the shipped file: each id appears in at least one case above."""
    fired = set().union(*(c[5] for c in CASES))
    assert {r.id for r in risk.load_rules().rules} <= fired


@pytest.mark.parametrize("birth,comorbidities,pregnant,expected", [
    (date(1958, 1, 1), ["diabetes"], False, {"elderly_with_comorbidity"}),
    (date(1958, 1, 1), [], False, set()),
    (date(1961, 11, 25), ["diabetes"], False, set()),  # 64 until tomorrow
    (date(1961, 11, 24), ["diabetes"], False, {"elderly_with_comorbidity"}),  # 65 today
    (date(1995, 1, 1), [], True, {"pregnant"}),
    (date(1990, 1, 1), ["cancer"], False, {"severe_comorbidity"}),
    (date(1945, 1, 1), [], False, {"elderly"}),
    (None, ["diabetes"], False, set()),
])
def test_high_risk_group(birth, comorbidities, pregnant, expected):
    reasons = risk.high_risk_reasons(birth=birth, comorbidities=comorbidities, pregnant=pregnant,
                                     today=TODAY)
    assert {r["id"] for r in reasons} == expected


symptom_sets = st.frozensets(st.sampled_from([s.value for s in Symptom]))


@settings(max_examples=300, deadline=None)
@given(
    symptoms=symptom_sets,
    extra=st.sampled_from([s.value for s in Symptom]),
    t=st.one_of(st.none(), st.floats(34, 43)),
    spo2=st.integers(70, 100),
    drop=st.integers(1, 10),
    hr=st.one_of(st.none(), st.integers(30, 220)),
    prev=st.one_of(st.none(), st.integers(70, 100)),
    high_risk=st.booleans(),
    fever_days=st.integers(0, 6),
)
def test_adding_a_symptom_or_lowering_spo2_never_lowers_the_level(
    symptoms, extra, t, spo2, drop, hr, prev, high_risk, fever_days
):
    history = History(max_spo2_24h=prev, fever_dates=frozenset(
        TODAY - timedelta(days=d + 1) for d in range(fever_days)))

    def level(o):
        return risk.RANK[evaluate(o, history=history, high_risk=high_risk, today=TODAY).level]

    base = Observation(symptoms, temperature_c=t, spo2=spo2, heart_rate=hr)
    more = Observation(symptoms | {extra}, temperature_c=t, spo2=spo2, heart_rate=hr)
    lower = Observation(symptoms, temperature_c=t, spo2=max(70, spo2 - drop), heart_rate=hr)
    assert level(more) >= level(base)
    assert level(lower) >= level(base)


def test_a_malformed_rules_file_is_refused_with_the_rule_named(tmp_path):
    data = yaml.safe_load(risk.DEFAULT_RULES.read_text(encoding="utf-8"))
    data["rules"][0]["when"] = {"spo2_below_ish": 90}
    with pytest.raises(RulesError, match="dyspnea"):
        risk.parse_rules(data)
    data = yaml.safe_load(risk.DEFAULT_RULES.read_text(encoding="utf-8"))
    data["rules"][0]["level"] = "purple"
    with pytest.raises(RulesError, match="level"):
        risk.parse_rules(data)


def test_a_deployment_can_replace_the_rules(tmp_path):
    data = yaml.safe_load(risk.DEFAULT_RULES.read_text(encoding="utf-8"))
    for rule in data["rules"]:
        if rule["id"] == "spo2_severe":
            rule["when"] = {"spo2_at_most": 93}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    custom = risk.load_rules(str(path))
    assert evaluate(obs(spo2=95), today=TODAY, rules=custom).level is G
    assert evaluate(obs(spo2=93), today=TODAY, rules=custom).level is R
