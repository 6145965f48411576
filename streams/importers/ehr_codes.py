"""Clinical code maps shared by the Synthea and FHIR importers (SNOMED CT, LOINC, CVX).

Conditions map to the EHR condition facts of :mod:`detectors.ehr` by SNOMED CT
code first, then by a description keyword rule (for codes not listed: other
exports, other Synthea versions). The choices follow the CDC list of conditions
raising the risk of severe COVID-19 and OpenSAFELY's groups (Williamson 2020):

- ``hypertension``: 59621000 Essential hypertension, 38341003 Hypertensive disorder.
- ``diabetes``: 44054006 type 2, 46635009 type 1, 73211009 diabetes mellitus, and
  diabetic complications (retinopathy, neuropathy, nephropathy "due to type 2
  diabetes"). *Prediabetes (15777000) is not diabetes.*
- ``obesity``: 162864005 BMI 30+, 408512008 BMI 40+, 414916001 Obesity, 238136002
  Morbid obesity (plus any measured BMI >= 30, see :func:`detectors.ehr.context_as_of`).
- ``chronic_lung``: COPD 13645005, chronic obstructive bronchitis 185086009,
  emphysema 87433001, asthma 195967001 / childhood asthma 233678006, cystic fibrosis
  190905008, pulmonary fibrosis 51615001. (Chronic *sinusitis* is upper airway: not mapped.)
- ``chronic_heart``: coronary heart disease 53741008, heart failure 84114007 /
  88805009 (chronic congestive), atrial fibrillation 49436004, myocardial infarction
  22298006 and its history 399211009.
- ``chronic_kidney``: CKD stages 1-5 (431855005, 431856006, 433144002, 431857002,
  433146000), end-stage renal disease 46177005, diabetic renal disease 127013003,
  microalbuminuria due to type 2 diabetes 90781000119102.
- ``immunosuppressed``: HIV 86406008, organ transplant, and active malignant
  neoplasms (description contains "malignant", "leukemia", "lymphoma" or "myeloma";
  e.g. 254837009 breast, 363406005 colon).
- ``covid19``: 840539006 COVID-19 (a diagnosis; "Suspected COVID-19" 840544004 is not).
"""

from __future__ import annotations

__all__ = [
    "SNOMED_CONDITIONS",
    "condition_from_code",
    "COVID19_SNOMED",
    "LOINC_BMI",
    "LOINC_SARS_COV_2",
    "CVX_SARS_COV_2",
    "is_covid_vaccine",
    "interpret_result",
    "RESULT_SNOMED",
]

COVID19_SNOMED = "840539006"

SNOMED_CONDITIONS: dict[str, str] = {
    # hypertension
    "59621000": "hypertension",
    "38341003": "hypertension",
    # diabetes
    "44054006": "diabetes",
    "46635009": "diabetes",
    "73211009": "diabetes",
    "368581000119106": "diabetes",
    "422034002": "diabetes",
    "1551000119108": "diabetes",
    "1501000119109": "diabetes",
    "97331000119101": "diabetes",
    # obesity
    "162864005": "obesity",
    "408512008": "obesity",
    "414916001": "obesity",
    "238136002": "obesity",
    # chronic lung disease
    "13645005": "chronic_lung",
    "185086009": "chronic_lung",
    "87433001": "chronic_lung",
    "195967001": "chronic_lung",
    "233678006": "chronic_lung",
    "190905008": "chronic_lung",
    "51615001": "chronic_lung",
    # chronic heart disease
    "53741008": "chronic_heart",
    "84114007": "chronic_heart",
    "88805009": "chronic_heart",
    "49436004": "chronic_heart",
    "22298006": "chronic_heart",
    "399211009": "chronic_heart",
    # chronic kidney disease
    "431855005": "chronic_kidney",
    "431856006": "chronic_kidney",
    "433144002": "chronic_kidney",
    "431857002": "chronic_kidney",
    "433146000": "chronic_kidney",
    "46177005": "chronic_kidney",
    "127013003": "chronic_kidney",
    "90781000119102": "chronic_kidney",
    # immunosuppression
    "86406008": "immunosuppressed",
    "254837009": "immunosuppressed",
    "363406005": "immunosuppressed",
    "109838007": "immunosuppressed",
    # infection
    COVID19_SNOMED: "covid19",
}

# Fallback by description, for codes not in the table. Order matters: first match wins.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("prediabetes", ""),
    ("suspected covid", ""),
    ("hypertension", "hypertension"),
    ("diabetes", "diabetes"),
    ("body mass index 30", "obesity"),
    ("body mass index 40", "obesity"),
    ("obesity", "obesity"),
    ("chronic kidney disease", "chronic_kidney"),
    ("end-stage renal", "chronic_kidney"),
    ("chronic obstructive", "chronic_lung"),
    ("emphysema", "chronic_lung"),
    ("asthma", "chronic_lung"),
    ("cystic fibrosis", "chronic_lung"),
    ("heart failure", "chronic_heart"),
    ("coronary", "chronic_heart"),
    ("myocardial infarction", "chronic_heart"),
    ("atrial fibrillation", "chronic_heart"),
    ("malignant", "immunosuppressed"),
    ("leukemia", "immunosuppressed"),
    ("lymphoma", "immunosuppressed"),
    ("myeloma", "immunosuppressed"),
    ("transplant", "immunosuppressed"),
    ("human immunodeficiency virus", "immunosuppressed"),
    ("covid-19", "covid19"),
)


def condition_from_code(code: str, description: str = "") -> str | None:
    """The condition fact for a SNOMED code (or description when the code is unlisted), or None."""
    fact = SNOMED_CONDITIONS.get((code or "").strip())
    if fact:
        return fact
    d = (description or "").lower()
    if "history of" in d and "infarction" not in d:
        return None
    for kw, f in _KEYWORDS:
        if kw in d:
            return f or None
    return None


LOINC_BMI = "39156-5"
#: SARS-CoV-2 test LOINC codes: RNA (NAA/PCR) and antigen tests.
LOINC_SARS_COV_2 = frozenset(
    {
        "94500-6",  # SARS-CoV-2 RNA NAA+probe, respiratory
        "94309-2",  # SARS-CoV-2 RNA NAA+probe, specimen
        "94531-1",  # SARS-CoV-2 RNA panel (Synthea)
        "94533-7",
        "94534-5",
        "94306-8",
        "94565-9",
        "94759-8",
        "94845-5",
        "95406-5",
        "94558-4",  # antigen, rapid immunoassay
        "95209-3",  # antigen, immunoassay
        "97097-0",  # antigen, rapid
    }
)

#: CVX codes of SARS-CoV-2 vaccines (CDC CVX table).
CVX_SARS_COV_2 = frozenset(
    {"207", "208", "210", "211", "212", "213", "217", "218", "219", "221", "225", "226", "227",
     "228", "229", "230", "300", "301", "302", "309", "310", "311", "312", "313"}
)


def is_covid_vaccine(code: str, description: str = "") -> bool:
    if (code or "").strip() in CVX_SARS_COV_2:
        return True
    d = (description or "").lower()
    return "sars-cov-2" in d or "covid" in d


#: SNOMED qualifier values for test results.
RESULT_SNOMED = {
    "260373001": 1.0,  # Detected
    "10828004": 1.0,  # Positive
    "260415000": 0.0,  # Not detected
    "260385009": 0.0,  # Negative
}


def interpret_result(text: str) -> float | None:
    """1.0 positive / 0.0 negative / None unknown, from a code or a result text."""
    t = (text or "").strip().lower()
    if t in RESULT_SNOMED:
        return RESULT_SNOMED[t]
    if not t:
        return None
    if "not detected" in t or "negative" in t or t in ("neg", "-"):
        return 0.0
    if "detected" in t or "positive" in t or t in ("pos", "+"):
        return 1.0
    return None
