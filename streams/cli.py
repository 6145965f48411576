"""The `prodromal` command line. Heavy libraries are imported inside commands so `--help` stays fast.

Each command is a thin shell over a module: parse arguments, call, print.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="prodromal: early infection detection from wearables.", no_args_is_help=True, add_completion=False)
import_app = typer.Typer(help="Import recorded cohorts into the prodromal cohort format.", no_args_is_help=True)
app.add_typer(import_app, name="import")

DATA_DEFAULT = Path("../shared/data")


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


# ---- commands are added below, one block each ----


def _ehr_cli(kind: str, facts: dict, source: str, cohort, out, map_csv, assign_seed, fraction, as_of, labels=None) -> dict:
    """Shared body of the EHR import commands (synthea, fhir)."""
    import datetime as dt

    from streams.cohort import CohortError
    from streams.importers.ehr_facts import import_ehr

    try:
        day = dt.date.fromisoformat(as_of) if as_of else None
        return import_ehr(
            facts, source, cohort=cohort, out=out, map_csv=map_csv, assign_seed=assign_seed,
            fraction=fraction, as_of=day, labels=labels,
        )
    except (CohortError, ValueError, OSError) as e:
        _fail(f"import {kind}: {e}")
        raise  # unreachable: _fail exits


@import_app.command("synthea")
def import_synthea(
    src: Path = typer.Argument(..., help="Synthea CSV export folder (patients.csv, conditions.csv[, immunizations.csv, observations.csv])."),
    cohort: Path = typer.Option(None, "--cohort", help="Attach EHR to this existing cohort."),
    out: Path = typer.Option(None, "--out", help="Write an EHR-only cohort (no wearable streams) here."),
    map_csv: Path = typer.Option(None, "--map", help="CSV participant_id,patient_id matching cohort participants to patients."),
    assign_seed: int = typer.Option(None, "--assign-seed", help="Assign patients to participants at random, deterministically."),
    fraction: float = typer.Option(1.0, "--fraction", help="With --assign-seed: share of participants given an EHR."),
    as_of: str = typer.Option(None, "--as-of", help="Date (YYYY-MM-DD) the participants.csv EHR columns describe."),
) -> None:
    """Import Synthea EHR context: dated facts (ehr_facts.csv) and participant EHR columns."""
    from streams.cohort import CohortError
    from streams.importers.synthea import read_synthea

    try:
        rec = read_synthea(src)
    except (CohortError, OSError) as e:
        _fail(f"import synthea: {e}")
    labels = {p: (rec.covid_onset.get(p), d) for p, d in rec.covid_diagnosis.items()}
    res = _ehr_cli("synthea", rec.facts, f"synthea:{src.name}", cohort, out, map_csv, assign_seed, fraction, as_of, labels)
    for msg in rec.problems[:10]:
        typer.echo(f"skipped: {msg}", err=True)
    typer.echo(
        f"synthea: {rec.counts['patients']} patients, {res['with_ehr']} participants with EHR of {res['participants']}, "
        f"{res['facts']} facts, {rec.counts['bad_rows']} rows skipped -> {cohort or out}"
    )


@import_app.command("fhir")
def import_fhir(
    src: Path = typer.Argument(..., help="FHIR R4 JSON Bundle / resource / NDJSON file, or a folder of them."),
    cohort: Path = typer.Option(None, "--cohort", help="Attach EHR to this existing cohort."),
    out: Path = typer.Option(None, "--out", help="Write an EHR-only cohort (no wearable streams) here."),
    map_csv: Path = typer.Option(None, "--map", help="CSV participant_id,patient_id (FHIR Patient.id)."),
    assign_seed: int = typer.Option(None, "--assign-seed", help="Assign patients to participants at random, deterministically."),
    fraction: float = typer.Option(1.0, "--fraction", help="With --assign-seed: share of participants given an EHR."),
    as_of: str = typer.Option(None, "--as-of", help="Date (YYYY-MM-DD) the participants.csv EHR columns describe."),
    strict: bool = typer.Option(False, "--strict", help="Fail on the first unreadable file instead of skipping it."),
) -> None:
    """Import FHIR R4 EHR context (Patient, Condition, Immunization, Observation) as dated facts."""
    from streams.importers.fhir import FhirError, read_fhir

    try:
        rec = read_fhir(src, strict=strict)
    except FhirError as e:
        _fail(f"import fhir: {e}")
    res = _ehr_cli("fhir", rec.facts, f"fhir:{src.name}", cohort, out, map_csv, assign_seed, fraction, as_of)
    for msg in rec.problems[:10]:
        typer.echo(f"skipped: {msg}", err=True)
    typer.echo(
        f"fhir: {len(rec.facts)} patients, {res['with_ehr']} participants with EHR of {res['participants']}, "
        f"{res['facts']} facts, {rec.counts['skipped']} entries skipped -> {cohort or out}"
    )


@import_app.command("welltory")
def import_welltory_cmd(
    src: Path = typer.Argument(..., help="Welltory hrv-covid19 data folder (participants.csv, wearables.csv, hrv_measurements.csv)."),
    out: Path = typer.Option(..., "--out", help="Cohort folder to write."),
    minute_emulation: bool = typer.Option(True, "--minute-emulation/--no-minute-emulation",
                                          help="Also write daily resting HR / steps as minute hr/steps streams."),
) -> None:
    """Import Welltory daily aggregates (daily.npz), HRV spot checks (ibi) and symptom-onset labels."""
    from streams.cohort import CohortError
    from streams.importers.welltory import import_welltory

    try:
        rep = import_welltory(src, out, minute_emulation=minute_emulation)
    except (CohortError, OSError) as e:
        _fail(f"import welltory: {e}")
    for msg in rep.problems[:10]:
        typer.echo(f"skipped: {msg}", err=True)
    typer.echo(
        f"welltory: {rep.participants} participants, {rep.labelled} labelled, {rep.with_daily} with daily data, "
        f"{rep.with_ibi} with HRV spot checks, {rep.counts['skipped']} rows skipped -> {out}"
    )


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
