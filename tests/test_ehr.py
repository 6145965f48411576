"""EHR context: temporal alignment, missing EHR, feature list, risk prior."""

from __future__ import annotations

import datetime as dt
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.ehr import (
    COHORT_COLUMNS,
    EHR_FEATURES,
    EhrError,
    EhrTimeline,
    Fact,
    cohort_columns,
    context_as_of,
    date_to_time,
    ehr_risk_prior,
    risk_factors,
)

D = dt.date


def f(day: str, name: str, value, pid: str = "P1") -> Fact:
    return Fact(pid, date_to_time(day), name, value)


FACTS = [
    f("1970-01-01", "birth_date", "1970-01-01"),
    f("1970-01-01", "sex", "M"),
    f("2019-06-01", "bmi", 27.0),
    f("2020-03-10", "hypertension", 1.0),
    f("2020-06-01", "bmi", 33.0),
    f("2021-01-10", "vaccine_dose", 1.0),
    f("2021-02-01", "vaccine_dose", 2.0),
    f("2020-04-01", "covid19", 1.0),
    f("2020-04-02", "test_sars_cov_2", 1.0),
    f("2020-09-01", "chronic_kidney", 1.0),
    f("2020-12-01", "chronic_kidney", 0.0),
]


def test_feature_vector_has_the_documented_keys_in_order():
    c = context_as_of(FACTS, D(2020, 1, 1))
    assert tuple(c) == EHR_FEATURES
    assert c["has_ehr"] == 1.0


def test_fact_after_the_day_is_never_used():
    before = context_as_of(FACTS, D(2020, 3, 9))
    on = context_as_of(FACTS, D(2020, 3, 10))
    assert before["hypertension"] == 0.0
    assert on["hypertension"] == 1.0
    assert context_as_of(FACTS, D(2020, 5, 31))["bmi"] == 27.0
    assert context_as_of(FACTS, D(2020, 6, 1))["bmi"] == 33.0


def test_every_feature_of_day_d_is_unchanged_by_facts_dated_later():
    day = D(2020, 6, 15)
    ref = context_as_of([x for x in FACTS if x.time_known < date_to_time("2020-06-16")], day)
    got = context_as_of(FACTS, day)
    for k in EHR_FEATURES:
        assert (math.isnan(ref[k]) and math.isnan(got[k])) or ref[k] == got[k], k


def test_time_cutoff_with_utc_offset_and_seconds():
    fact = [Fact("P1", date_to_time("2020-03-10") + 3600.0, "diabetes", 1.0)]  # 01:00 UTC
    # Local day 2020-03-09 at UTC-2 ends at 02:00 UTC on the 10th: the fact is known by then.
    assert context_as_of(fact, D(2020, 3, 9), utc_offset_s=-7200)["diabetes"] == 1.0
    assert context_as_of(fact, D(2020, 3, 9), utc_offset_s=0)["has_ehr"] == 0.0
    t = date_to_time("2020-03-10") + 3600.0
    assert context_as_of(fact, t)["diabetes"] == 1.0
    assert context_as_of(fact, t - 1.0)["has_ehr"] == 0.0


def test_age_is_computed_at_the_day():
    a1 = context_as_of(FACTS, D(2020, 1, 1))["age_years"]
    a2 = context_as_of(FACTS, D(2021, 1, 1))["age_years"]
    assert a1 == pytest.approx(50.0, abs=0.01)
    assert a2 - a1 == pytest.approx(366 / 365.2425, abs=1e-6)
    age_fact = [Fact("P1", date_to_time("2020-01-01"), "age_years", 40.0)]
    assert context_as_of(age_fact, D(2022, 1, 1))["age_years"] == pytest.approx(42.0, abs=0.01)


def test_missing_ehr_is_nan_with_has_ehr_zero():
    c = context_as_of([], D(2020, 1, 1))
    assert c["has_ehr"] == 0.0
    assert all(math.isnan(c[k]) for k in EHR_FEATURES if k != "has_ehr")
    # Facts that all lie in the future are missing EHR too.
    c = context_as_of(FACTS, D(1969, 12, 1))
    assert c["has_ehr"] == 0.0 and math.isnan(c["hypertension"])


def test_unrecorded_condition_is_zero_with_ehr_and_resolution_returns_zero():
    c = context_as_of(FACTS, D(2020, 10, 1))
    assert c["diabetes"] == 0.0 and c["chronic_kidney"] == 1.0
    assert context_as_of(FACTS, D(2020, 12, 1))["chronic_kidney"] == 0.0


def test_bmi_30_counts_as_obesity():
    assert context_as_of(FACTS, D(2020, 5, 1))["obesity"] == 0.0
    assert context_as_of(FACTS, D(2020, 7, 1))["obesity"] == 1.0


def test_vaccine_doses_and_days_since():
    assert context_as_of(FACTS, D(2021, 1, 9))["vaccine_doses"] == 0.0
    assert math.isnan(context_as_of(FACTS, D(2021, 1, 9))["days_since_vaccine"])
    c = context_as_of(FACTS, D(2021, 2, 11))
    assert c["vaccine_doses"] == 2.0
    assert c["days_since_vaccine"] == pytest.approx(11.0)  # end of 2021-02-11 minus 2021-02-01


def test_current_infection_is_not_a_prior_infection():
    # diagnosis on 04-01 and a positive test on 04-02 are one episode, and only "prior" after 30 days
    assert context_as_of(FACTS, D(2020, 4, 5))["prior_infections"] == 0.0
    c = context_as_of(FACTS, D(2020, 6, 1))
    assert c["prior_infections"] == 1.0
    assert c["days_since_infection"] == pytest.approx(62.0)
    assert context_as_of(FACTS, D(2020, 6, 1), prior_gap_days=90)["prior_infections"] == 0.0


def test_fact_check_names_participant_and_field():
    with pytest.raises(EhrError, match="participant P9: fact 'colour'.*unknown fact"):
        Fact("P9", 0.0, "colour", 1.0).check()
    with pytest.raises(EhrError, match="participant P9: fact 'bmi': field 'value'"):
        Fact("P9", 0.0, "bmi", 300.0).check()
    with pytest.raises(EhrError, match="field 'value': sex"):
        Fact("P9", 0.0, "sex", "X").check()
    with pytest.raises(EhrError, match="field 'time_known'"):
        Fact("P9", float("nan"), "bmi", 20.0).check()


def test_timeline_is_picklable_and_matches_context_as_of():
    tl = EhrTimeline()
    tl.update_many(FACTS + [f("2020-01-01", "diabetes", 1.0, pid="P2")])
    tl2 = pickle.loads(pickle.dumps(tl))
    assert tl2.participants() == ["P1", "P2"]
    assert tl2.get("P1", D(2020, 7, 1)) == pytest.approx(context_as_of(FACTS, D(2020, 7, 1)), nan_ok=True)
    assert tl2.get("nobody", D(2020, 7, 1))["has_ehr"] == 0.0


def test_cohort_columns_match_the_cohort_format():
    from streams.cohort import EHR_COLUMNS

    assert COHORT_COLUMNS == EHR_COLUMNS
    cols = cohort_columns(context_as_of(FACTS, D(2021, 3, 1)))
    assert cols["sex"] == "M" and cols["hypertension"] == 1 and cols["vaccine_doses"] == 2
    assert set(cols) <= set(EHR_COLUMNS)
    assert cohort_columns(context_as_of([], D(2021, 3, 1))) == {}


def test_risk_prior_orders_known_risks_and_ignores_missing_ehr():
    base = ehr_risk_prior({"has_ehr": 0.0}, base_risk=0.1)
    assert base == 0.1
    ref = {"has_ehr": 1.0, "age_years": 55.0, "sex_male": 0.0}
    assert ehr_risk_prior(ref, base_risk=0.1) == pytest.approx(0.1)
    old_man = dict(ref, age_years=85.0, sex_male=1.0)
    # OpenSAFELY: 80+ HR 20.61, male 1.59 -> odds x 32.77
    odds = 0.1 / 0.9 * 20.61 * 1.59
    assert ehr_risk_prior(old_man, base_risk=0.1) == pytest.approx(odds / (1 + odds))
    vaccinated = dict(old_man, vaccine_doses=2.0)
    assert ehr_risk_prior(vaccinated, 0.1) < ehr_risk_prior(old_man, 0.1)
    assert set(risk_factors(dict(old_man, diabetes=1.0))) == {"age_years", "sex_male", "diabetes"}
    with pytest.raises(ValueError, match="base_risk"):
        ehr_risk_prior(ref, base_risk=1.5)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 20000),
            st.sampled_from(["bmi", "hypertension", "vaccine_dose", "covid19", "test_sars_cov_2", "diabetes"]),
            st.floats(10, 60),
        ),
        max_size=30,
    ),
    st.integers(0, 20000),
)
def test_fuzz_future_facts_never_change_the_context(items, day_idx):
    facts = [Fact("P", float(d) * 86400.0, n, round(v) if n != "bmi" else v) for d, n, v in items]
    day = D(1970, 1, 1) + dt.timedelta(days=day_idx)
    past = [x for x in facts if x.time_known < (day_idx + 1) * 86400.0]
    a, b = context_as_of(facts, day), context_as_of(past, day)
    assert a == pytest.approx(b, nan_ok=True)
    p = ehr_risk_prior(a)
    assert 0.0 < p < 1.0
