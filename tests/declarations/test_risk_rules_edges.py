"""The risk rules at their edges (issue 20: the survivors of ``bench/mutation.py risk``).

``test_risk_rules.py`` checks the shipped rules case by case; this file pins what those cases
left open: each condition on both sides of its value and with the value missing, the rules file's
checks and their messages (an operator reads them when a deployment's file is refused), the order
and contents of the fired rules, the advice of each level, and ages on and around a birthday.
"""

import copy
import re
from datetime import date

import pytest
import yaml

from server.core.enums import RiskLevel
from server.declarations import risk
from server.declarations.risk import History, Observation, Rule, RulesError, RuleSet, evaluate

TODAY = date(2026, 11, 24)
G, Y, O, R = RiskLevel.green, RiskLevel.yellow, RiskLevel.orange, RiskLevel.red  # noqa: E741
DEFAULT = yaml.safe_load(risk.DEFAULT_RULES.read_text(encoding="utf-8"))
ADVICE = {
    level: {"vi": f"vi {level.value}", "en": f"en {level.value}"}
    for level in (G, Y, O, R)
}


def rules_data(**changes):
    data = copy.deepcopy(DEFAULT)
    data.update(changes)
    return data


def one_rule(when, level=O, **kw) -> RuleSet:
    """A rule set of exactly one declaration rule, so a condition is tested alone."""
    return RuleSet(
        rules=(Rule(id="r", when=when, vi="vi r", en="en r", level=level),),
        high_risk_group=(),
        advice=ADVICE,
        fever_threshold_c=kw.get("fever_c", 37.5),
    )


NOTHING = Observation()
NO_HISTORY = History()


def fires(when, o=NOTHING, *, history=NO_HISTORY, high_risk=False, fever_c=37.5) -> bool:
    a = evaluate(o, history=history, high_risk=high_risk, today=TODAY,
                 rules=one_rule(when, fever_c=fever_c))
    return [r["id"] for r in a.fired] == ["r"]


# --- each condition alone, on both sides of its value -----------------------------------------


@pytest.mark.parametrize("symptoms,expected", [
    (set(), False), ({"cough"}, False), ({"dyspnea"}, True), ({"cough", "chest_pain"}, True),
])
def test_symptoms_any(symptoms, expected):
    assert fires({"symptoms_any": ["dyspnea", "chest_pain"]},
                 Observation(frozenset(symptoms))) is expected


@pytest.mark.parametrize("symptoms,expected", [
    (set(), False), ({"cough"}, False), ({"cough", "fever"}, True),
    ({"cough", "fever", "headache"}, True),
])
def test_symptom_count_at_least(symptoms, expected):
    assert fires({"symptom_count_at_least": 2}, Observation(frozenset(symptoms))) is expected


@pytest.mark.parametrize("spo2,expected", [(None, False), (94, True), (95, True), (96, False)])
def test_spo2_at_most(spo2, expected):
    assert fires({"spo2_at_most": 95}, Observation(spo2=spo2)) is expected


@pytest.mark.parametrize("t,expected", [(None, False), (38.9, False), (39.0, True), (39.1, True)])
def test_temperature_at_least(t, expected):
    assert fires({"temperature_at_least": 39.0}, Observation(temperature_c=t)) is expected


@pytest.mark.parametrize("hr,expected", [(None, False), (119, False), (120, True), (121, True)])
def test_heart_rate_at_least(hr, expected):
    assert fires({"heart_rate_at_least": 120}, Observation(heart_rate=hr)) is expected


@pytest.mark.parametrize("value,high_risk,expected", [
    (True, True, True), (True, False, False), (False, False, True), (False, True, False),
])
def test_high_risk_condition_compares_with_its_value(value, high_risk, expected):
    assert fires({"high_risk": value}, high_risk=high_risk) is expected


@pytest.mark.parametrize("spo2,max_24h,expected", [
    (None, 99, False), (96, None, False), (None, None, False),
    (97, 99, False), (96, 99, True), (95, 99, True), (99, 96, False),
])
def test_spo2_drop_24h_at_least(spo2, max_24h, expected):
    assert fires({"spo2_drop_24h_at_least": 3}, Observation(spo2=spo2),
                 history=History(max_spo2_24h=max_24h)) is expected


def days_ago(*n):
    return frozenset(date.fromordinal(TODAY.toordinal() - d) for d in n)


@pytest.mark.parametrize("o,fever_dates,expected", [
    # fever today by temperature or by the declared symptom, counting today
    (Observation(temperature_c=38.0), days_ago(1, 2), True),
    (Observation(temperature_c=38.0), days_ago(1), False),
    (Observation(frozenset({"fever"})), days_ago(1, 2), True),
    (Observation(frozenset({"fever"})), days_ago(1), False),
    # no fever today: earlier days never fire it
    (Observation(temperature_c=36.5), days_ago(1, 2, 3, 4), False),
    (Observation(), days_ago(1, 2, 3, 4), False),
    # today already among the dates: counted once
    (Observation(temperature_c=38.0), days_ago(0, 1), False),
    (Observation(temperature_c=38.0), days_ago(0, 1, 2), True),
])
def test_fever_days_more_than(o, fever_dates, expected):
    assert fires({"fever_days_more_than": 2}, o,
                 history=History(fever_dates=fever_dates)) is expected


@pytest.mark.parametrize("t,fever_c,expected", [
    (37.9, 38.0, False), (38.0, 38.0, True), (37.5, 38.0, False), (37.5, 37.5, True),
])
def test_fever_threshold_of_the_rule_set_counts_a_fever_day(t, fever_c, expected):
    """``fever_days_more_than`` counts today with the rule set's own fever threshold."""
    assert fires({"fever_days_more_than": 1}, Observation(temperature_c=t),
                 history=History(fever_dates=days_ago(1)), fever_c=fever_c) is expected


@pytest.mark.parametrize("o,threshold,expected", [
    (Observation(), 37.5, False),
    (Observation(frozenset({"fever"})), 37.5, True),
    (Observation(frozenset({"cough"})), 37.5, False),
    (Observation(temperature_c=37.4), 37.5, False),
    (Observation(temperature_c=37.5), 37.5, True),
    (Observation(temperature_c=37.6), 37.5, True),
    (Observation(frozenset({"cough"}), temperature_c=38.0), 37.5, True),
])
def test_has_fever(o, threshold, expected):
    assert risk.has_fever(o, threshold) is expected


def test_every_condition_of_a_rule_must_hold():
    when = {"high_risk": True, "symptom_count_at_least": 1}
    assert fires(when, Observation(frozenset({"cough"})), high_risk=True)
    assert not fires(when, Observation(frozenset({"cough"})), high_risk=False)
    assert not fires(when, Observation(), high_risk=True)


def test_an_unknown_condition_is_an_error_even_past_the_parser():
    with pytest.raises(RulesError, match=r"^unknown condition spo2_below$"):
        evaluate(Observation(), today=TODAY, rules=one_rule({"spo2_below": 90}))


# --- evaluate: level, fired rules and advice ----------------------------------------------------


def test_the_fired_rules_are_listed_highest_level_first_with_their_texts():
    a = evaluate(Observation(frozenset({"cough"}), temperature_c=39.2, spo2=93), today=TODAY)
    assert a.level is R
    levels = [r["level"] for r in a.fired]
    assert levels == sorted(levels, key=lambda v: -risk.RANK[RiskLevel(v)])
    assert levels[0] == "red" and levels[-1] == "yellow"
    by_id = {r["id"]: r for r in a.fired}
    assert by_id["spo2_severe"] == {"id": "spo2_severe", "level": "red", "vi": "SpO2 ≤ 95%",
                                    "en": "SpO2 at or below 95 %"}
    assert by_id["high_fever"]["level"] == "orange"
    assert by_id["symptoms"]["level"] == "yellow"


def test_the_rules_of_one_level_keep_the_files_order():
    a = evaluate(Observation(frozenset({"dyspnea", "chest_pain", "confusion"})), today=TODAY)
    assert [r["id"] for r in a.fired] == ["dyspnea", "chest_pain", "confusion", "symptoms"]


@pytest.mark.parametrize("o,level", [
    (Observation(), G),
    (Observation(frozenset({"cough"})), Y),
    (Observation(heart_rate=130), O),
    (Observation(spo2=90), R),
])
def test_the_advice_is_the_one_of_the_level(o, level):
    a = evaluate(o, today=TODAY)
    assert a.level is level
    assert a.advice == DEFAULT["advice"][level.value]


def test_the_advice_is_a_copy():
    """The caller may change the assessment's advice without changing the rule set."""
    rules = risk.parse_rules(DEFAULT)
    a = evaluate(Observation(), today=TODAY, rules=rules)
    a.advice["en"] = "changed"
    assert rules.advice[G]["en"] == DEFAULT["advice"]["green"]["en"]


def test_no_rule_fired_is_green_with_nothing_listed():
    a = evaluate(Observation(spo2=99, temperature_c=36.6, heart_rate=70), today=TODAY)
    assert (a.level, a.fired) == (G, [])


def test_without_rules_the_packaged_set_is_used():
    assert evaluate(Observation(spo2=95), today=TODAY).level is R
    assert risk.high_risk_reasons(birth=None, comorbidities=[], pregnant=True,
                                  today=TODAY)[0]["id"] == "pregnant"


# --- max_level -----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels,expected", [
    ([], G), ([G], G), ([Y, G], Y), ([G, R, O], R), ([O, Y], O), ([Y, O], O),
])
def test_max_level(levels, expected):
    assert risk.max_level(levels) is expected


# --- ages and the high-risk group ----------------------------------------------------------------


@pytest.mark.parametrize("birth,day,age", [
    (None, TODAY, None),
    (date(2000, 11, 24), date(2026, 11, 24), 26),  # the birthday
    (date(2000, 11, 25), date(2026, 11, 24), 25),  # the day before
    (date(2000, 11, 23), date(2026, 11, 24), 26),  # the day after
    (date(2000, 12, 1), date(2026, 11, 30), 25),  # a later month, an earlier day
    (date(2000, 10, 30), date(2026, 11, 1), 26),  # an earlier month, a later day
])
def test_age_on(birth, day, age):
    assert risk.age_on(birth, day) == age


def group(*rules) -> RuleSet:
    return RuleSet(rules=(), high_risk_group=tuple(
        Rule(id=f"g{i}", when=w, vi=f"vi g{i}", en=f"en g{i}") for i, w in enumerate(rules)
    ), advice=ADVICE, fever_threshold_c=37.5)


def reasons(rules, *, birth=None, comorbidities=(), pregnant=False):
    return [r["id"] for r in risk.high_risk_reasons(
        birth=birth, comorbidities=comorbidities, pregnant=pregnant, today=TODAY, rules=rules)]


@pytest.mark.parametrize("birth,expected", [
    (None, []), (date(1961, 11, 25), []), (date(1961, 11, 24), ["g0"]), (date(1950, 1, 1), ["g0"]),
])
def test_age_at_least(birth, expected):
    assert reasons(group({"age_at_least": 65}), birth=birth) == expected


@pytest.mark.parametrize("comorbidities,expected", [
    ([], []), (["diabetes"], []), (["diabetes", "asthma"], ["g0"]),
    (["diabetes", "diabetes"], []),  # one comorbidity named twice is one
    (["diabetes", "asthma", "copd"], ["g0"]),
])
def test_comorbidity_count_at_least(comorbidities, expected):
    assert reasons(group({"comorbidity_count_at_least": 2}),
                   comorbidities=comorbidities) == expected


@pytest.mark.parametrize("comorbidities,expected", [
    ([], []), (["diabetes"], []), (["cancer"], ["g0"]), (["diabetes", "organ_transplant"], ["g0"]),
])
def test_comorbidities_any(comorbidities, expected):
    assert reasons(group({"comorbidities_any": ["cancer", "organ_transplant"]}),
                   comorbidities=comorbidities) == expected


@pytest.mark.parametrize("value,pregnant,expected", [
    (True, True, ["g0"]), (True, False, []), (False, False, ["g0"]), (False, True, []),
])
def test_pregnant_compares_with_its_value(value, pregnant, expected):
    assert reasons(group({"pregnant": value}), pregnant=pregnant) == expected


def test_a_group_rule_needs_all_its_conditions_and_reports_its_texts():
    rules = group({"age_at_least": 65, "comorbidity_count_at_least": 1}, {"pregnant": True})
    assert reasons(rules, birth=date(1950, 1, 1)) == []
    assert reasons(rules, comorbidities=["asthma"]) == []
    out = risk.high_risk_reasons(birth=date(1950, 1, 1), comorbidities=["asthma"], pregnant=True,
                                 today=TODAY, rules=rules)
    assert out == [{"id": "g0", "vi": "vi g0", "en": "en g0"},
                   {"id": "g1", "vi": "vi g1", "en": "en g1"}]


def test_an_unknown_group_condition_is_an_error():
    with pytest.raises(RulesError, match=r"^unknown condition shoe_size$"):
        reasons(group({"shoe_size": 44}))


# --- the rules file's checks ---------------------------------------------------------------------


def refused(data) -> str:
    with pytest.raises(RulesError) as exc:
        risk.parse_rules(data)
    return str(exc.value)


def test_the_shipped_file_parses_into_every_rule_and_level():
    rs = risk.parse_rules(DEFAULT)
    assert [r.id for r in rs.rules] == [r["id"] for r in DEFAULT["rules"]]
    assert [r.id for r in rs.high_risk_group] == [r["id"] for r in DEFAULT["high_risk_group"]]
    assert all(r.level is None for r in rs.high_risk_group)
    assert {r.id: r.level for r in rs.rules}["spo2_falling"] is O
    assert set(rs.advice) == {G, Y, O, R}
    assert rs.fever_threshold_c == 37.5
    first = rs.rules[0]
    assert (first.id, first.when, first.vi, first.en, first.level) == (
        "dyspnea", {"symptoms_any": ["dyspnea"]}, "Khó thở", "Shortness of breath", R)


def test_the_fever_threshold_comes_from_the_file_with_a_default():
    assert risk.parse_rules(rules_data(fever_threshold_c=38)).fever_threshold_c == 38.0
    data = rules_data()
    del data["fever_threshold_c"]
    assert risk.parse_rules(data).fever_threshold_c == 37.5
    assert isinstance(risk.parse_rules(rules_data(fever_threshold_c=38)).fever_threshold_c, float)


def test_a_file_without_a_group_or_without_rules_is_accepted():
    data = rules_data()
    del data["high_risk_group"]
    assert risk.parse_rules(data).high_risk_group == ()
    data = rules_data()
    del data["rules"]
    assert risk.parse_rules(data).rules == ()


@pytest.mark.parametrize("version", [None, 2, "1", 0])
def test_the_version_must_be_1(version):
    data = rules_data(version=version)
    if version is None:
        del data["version"]
    assert refused(data) == "rules file: version must be 1"


def test_rule_ids_must_be_unique_across_rules_and_the_group():
    data = rules_data()
    data["high_risk_group"][0]["id"] = "dyspnea"
    assert refused(data) == "rules file: rule ids must be unique"
    data = rules_data()
    data["rules"][1]["id"] = "dyspnea"
    assert refused(data) == "rules file: rule ids must be unique"


@pytest.mark.parametrize("drop", [None, "red", "green"])
def test_advice_is_needed_for_every_level(drop):
    data = rules_data()
    if drop is None:
        del data["advice"]
    else:
        del data["advice"][drop]
    assert refused(data) == "rules file: advice needs a text for every level"


def test_advice_for_an_unknown_level_is_refused():
    data = rules_data()
    data["advice"]["purple"] = {"vi": "x", "en": "x"}
    with pytest.raises(ValueError):
        risk.parse_rules(data)


def test_a_rule_with_an_unknown_condition_is_refused_with_its_name():
    data = rules_data()
    data["rules"][0]["when"] = {"spo2_below_ish": 90, "symptoms_any": ["x"]}
    assert refused(data) == "rule dyspnea: unknown or missing conditions ['spo2_below_ish']"


@pytest.mark.parametrize("when", [None, {}])
def test_a_rule_without_conditions_is_refused(when):
    data = rules_data()
    data["rules"][0]["when"] = when
    assert refused(data) == "rule dyspnea: unknown or missing conditions (none)"


def test_a_group_condition_in_a_declaration_rule_is_refused_and_the_other_way():
    data = rules_data()
    data["rules"][0]["when"] = {"age_at_least": 65}
    assert refused(data) == "rule dyspnea: unknown or missing conditions ['age_at_least']"
    data = rules_data()
    data["high_risk_group"][0]["when"] = {"spo2_at_most": 90}
    assert refused(data) == (
        "rule elderly_with_comorbidity: unknown or missing conditions ['spo2_at_most']")


def test_a_rule_without_an_id_is_named_by_a_question_mark():
    data = rules_data()
    del data["rules"][0]["id"]
    data["rules"][0]["when"] = {}
    assert refused(data) == "rule ?: unknown or missing conditions (none)"


@pytest.mark.parametrize("level", [None, "purple", "RED"])
def test_a_rule_needs_a_known_level(level):
    data = rules_data()
    if level is None:
        del data["rules"][0]["level"]
    else:
        data["rules"][0]["level"] = level
    assert refused(data) == (
        "rule dyspnea: level must be one of ['green', 'yellow', 'orange', 'red']")


def test_a_group_rule_needs_no_level():
    data = rules_data()
    assert "level" not in data["high_risk_group"][0]
    assert risk.parse_rules(data).high_risk_group[0].level is None


@pytest.mark.parametrize("drop", ["vi", "en"])
@pytest.mark.parametrize("where", ["rules", "high_risk_group"])
def test_a_rule_needs_both_texts(drop, where):
    data = rules_data()
    rid = data[where][0]["id"]
    data[where][0][drop] = ""
    assert refused(data) == f"rule {rid}: needs a Vietnamese (vi) and an English (en) text"
    del data[where][0][drop]
    assert refused(data) == f"rule {rid}: needs a Vietnamese (vi) and an English (en) text"


def test_a_rules_file_is_read_as_utf8_and_cached(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(DEFAULT, allow_unicode=True), encoding="utf-8")
    first = risk.load_rules(str(path))
    assert first.rules[0].vi == "Khó thở"
    assert risk.load_rules(str(path)) is first
    assert [r.id for r in risk.load_rules().rules] == [r["id"] for r in DEFAULT["rules"]]


def test_the_order_and_rank_of_levels():
    assert risk.ORDER == [G, Y, O, R]
    assert [risk.RANK[x] for x in risk.ORDER] == [0, 1, 2, 3]
    assert re.fullmatch(r"rules\.yaml", risk.DEFAULT_RULES.name)
