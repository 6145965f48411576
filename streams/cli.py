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

# ---- lead: stanford import, train, replay ----


def _progress(total: int, label: str):
    """A rich progress bar on stderr; returns (context manager, advance callback)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    prog = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True,
                    console=Console(stderr=True))
    task = prog.add_task(label, total=total)
    return prog, (lambda _pid=None: prog.advance(task))


@import_app.command("stanford")
def import_stanford_cmd(
    src: Path = typer.Argument(..., help="Folder of <ID>_hr.csv(.zip) and <ID>_steps.csv(.zip) Fitbit files."),
    out: Path = typer.Option(..., "--out", help="Cohort folder to write."),
    labels: Path = typer.Option(None, "--labels", help="CSV participant_id,symptom_onset_date,diagnosis_date (default: onset_labels_aligned_to_these_files.csv in SRC)."),
) -> None:
    """Import Fitbit minute data in the Stanford/Mishra 2020 layout."""
    from streams.cohort import CohortError
    from streams.importers.stanford import import_stanford

    try:
        s = import_stanford(src, out, labels)
    except (CohortError, OSError) as e:
        _fail(f"import stanford: {e}")
    typer.echo(
        f"stanford: {s.participants} participants ({s.labelled} labelled), {s.samples['hr']} HR and "
        f"{s.samples['steps']} steps samples; dropped out of range {s.dropped['hr']}+{s.dropped['steps']}, "
        f"repeated timestamps {s.duplicates['hr']}+{s.duplicates['steps']} -> {out}"
    )


@app.command("train")
def train_cmd(
    cohort: Path = typer.Argument(..., help="Cohort folder with labels (e.g. from `prodromal simulate`)."),
    model: str = typer.Option("lightgbm", "--model", help="Model kind: lightgbm, forest (early, late: EHR fusion)."),
    out: Path = typer.Option(..., "--out", help="Artifact folder to write."),
    folds: int = typer.Option(5, "--folds", help="Participant-grouped cross-validation folds."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(2, "--threads", help="Threads for model fitting."),
    json_out: bool = typer.Option(False, "--json", help="Print the CV metrics as JSON."),
) -> None:
    """Train a supervised detector with participant-grouped cross-validation; print CV metrics."""
    import json

    from streams.cohort import Cohort, CohortError

    try:
        n = len(Cohort(cohort).participants)
        if model in ("early", "late"):
            from streams.fusion_train import train_fusion as _train
        elif model in ("lightgbm", "forest"):
            from streams.train import train as _train
        else:
            _fail(f"unknown model {model!r}; valid: lightgbm, forest, early, late")
        prog, adv = _progress(n, f"features ({model})")
        with prog:
            res = _train(cohort, model, out, folds=folds, seed=seed, threads=threads, progress=adv)
    except (CohortError, ValueError, OSError, ImportError) as e:
        _fail(f"train: {e}")
    cv = res.cv
    if json_out:
        typer.echo(json.dumps({"cv": cv, "thresholds": list(res.thresholds), "training": res.training}, indent=2, default=float))
        return
    typer.echo(f"trained {model} on {res.training['participants']} participants, {res.training['days']} days "
               f"({res.training['positive_days']} positive) in {res.seconds:.1f} s -> {out}")
    typer.echo(f"participant-grouped {cv['folds']}-fold CV: AUROC {cv['auroc']:.3f} "
               f"(folds {', '.join(f'{a:.3f}' for a in cv['auroc_per_fold'])}); sensitivity at 90% specificity "
               f"{cv['sens_at_90_spec']:.3f}, at 95% {cv['sens_at_95_spec']:.3f}; Brier {cv['brier']:.4f}")
    typer.echo(f"alert thresholds (yellow, red): {res.thresholds[0]:.4f}, {res.thresholds[1]:.4f}")


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.0f}%" if pct else f"{v:.2f}"


@app.command("replay")
def replay_cmd(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    detector: str = typer.Option("nightsignal", "--detector", help="nightsignal, cusum, forest, lightgbm, online, early, late."),
    model: Path = typer.Option(None, "--model", help="Model artifact folder (forest, lightgbm, early, late)."),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    json_out: bool = typer.Option(False, "--json", help="Print the evaluation as JSON."),
    consecutive: int = typer.Option(1, "--consecutive", help="Nights a score must stay above threshold (score detectors)."),
    budget: int = typer.Option(None, "--budget", help="Alert budget: max alert days per participant per 30 days (yellow suppressed beyond)."),
    n_boot: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for confidence intervals."),
    pseudonymize: bool = typer.Option(False, "--pseudonymize", help="Replace participant ids in every output by a keyed hash (key from env PRODROMAL_PSEUDONYM_KEY or PRODROMAL_PSEUDONYM_KEY_FILE)."),
) -> None:
    """Replay a cohort in-process: features, scores, alerts, spool file and evaluation."""
    import json

    from detectors.policy import AlertPolicy
    from streams.artifacts import ArtifactError
    from streams.cohort import Cohort, CohortError
    from streams.registry import make_detector
    from streams.replay import replay

    try:
        pseudo = None
        if pseudonymize:
            from streams.privacy import load_pseudonymizer

            pseudo = load_pseudonymizer(required=True)
        det = make_detector(detector, model)
        if hasattr(det, "set_ehr"):  # fusion detectors read the cohort's dated EHR facts
            from streams.importers.ehr_facts import read_facts

            det.set_ehr(read_facts(cohort))
        n = len(Cohort(cohort).participants)
        policy = AlertPolicy(thresholds=det.thresholds, consecutive=consecutive, budget_per_30d=budget)
        prog, adv = _progress(n, f"replay ({detector})")
        with prog:
            res = replay(cohort, det, out, policy=policy, n_boot=n_boot, progress=adv, pseudonym=pseudo)
    except (CohortError, ArtifactError, ValueError, OSError) as e:
        _fail(f"replay: {e}")
    ev = res.evaluation
    if json_out:
        keys = ("participants", "labelled", "detected_early", "early_detection_rate", "labelled_with_data_before_onset",
                "early_detection_rate_with_data", "median_lead_days",
                "false_alert_days_per_month", "auroc", "sens_at_90_spec", "sens_at_95_spec", "lead_days_iqr", "ci95",
                "detector", "subgroups")
        typer.echo(json.dumps({k: ev.get(k) for k in keys}, indent=2, default=float))
        return
    typer.echo(f"replayed {res.participants} participants, {res.days} participant-days, {res.samples} samples "
               f"in {res.seconds:.1f} s; {res.alerts} alert days -> {out}")
    typer.echo(f"{detector}: evaluated {ev['participants']} participants ({ev['labelled']} labelled): "
               f"early detection {ev['detected_early']}/{ev['labelled']} ({_fmt(ev['early_detection_rate'], True)}; "
               f"{_fmt(ev.get('early_detection_rate_with_data'), True)} of {ev.get('labelled_with_data_before_onset')} with data), "
               f"median lead {_fmt(ev['median_lead_days'])} days, false alert days/month "
               f"{_fmt(ev['false_alert_days_per_month'])}, AUROC {_fmt(ev['auroc'])}")


@app.command("dashboard")
def dashboard_cmd(
    run_dir: Path = typer.Argument(None, help="Replay run folder to show (the embedded default; no servers needed)."),
    influx_url: str = typer.Option(None, "--influx-url", help="Read from InfluxDB instead (InfluxQL over HTTP), e.g. http://127.0.0.1:8086."),
    db: str = typer.Option("prodromal", "--db", help="InfluxDB database (1.x) or DBRP-mapped database (2.x/3.x)."),
    cohort_name: str = typer.Option(None, "--cohort", help="Cohort tag to show (InfluxDB; default: the first found)."),
    model: str = typer.Option(None, "--model", help="Model tag to show (InfluxDB; default: any)."),
    influx_token_file: Path = typer.Option(None, "--influx-token-file", help="File holding the InfluxDB token (or env PRODROMAL_INFLUX_TOKEN / PRODROMAL_INFLUX__TOKEN)."),
    host: str = typer.Option(None, "--host", help="Bind address (default 127.0.0.1; other addresses need an access token)."),
    port: int = typer.Option(None, "--port", help="Port (default 8050; 0 = any free port)."),
    token_file: Path = typer.Option(None, "--token-file", help="File holding the dashboard access token (or env PRODROMAL_DASHBOARD__TOKEN)."),
) -> None:
    """Serve the cohort overview and participant view in a local web page."""
    import os

    from streams.dashboard import AccessError, DashboardServer, DataError, InfluxSource, RunSource
    from streams.settings import SettingsError, load_settings

    try:
        s = load_settings(overrides={"dashboard.host": host, "dashboard.port": port, "dashboard.token_file": token_file,
                                     "influx.token_file": influx_token_file})
        if influx_url:
            tok = s.influx.token.get_secret_value() if s.influx.token else os.environ.get("PRODROMAL_INFLUX_TOKEN")
            source = InfluxSource(influx_url, db, token=tok, cohort=cohort_name, model=model)
        elif run_dir is not None:
            source = RunSource(run_dir)
        else:
            _fail("dashboard: give a replay run folder (prodromal dashboard RUN_DIR) or --influx-url URL")
        source.cohort()  # fail now, not at the first page view
        token = s.dashboard.token.get_secret_value() if s.dashboard.token else None
        srv = DashboardServer(source, s.dashboard.host, s.dashboard.port, token)
    except (SettingsError, AccessError, DataError, OSError) as e:
        _fail(f"dashboard: {e}")
    typer.echo(f"prodromal dashboard on {srv.url}{'  (open once with ?token=<your token>)' if token else ''}  (Ctrl-C to stop)")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="Replay run folder."),
    out: Path = typer.Option(None, "--out", help="HTML file to write (default RUN_DIR/report.html)."),
    max_timelines: int = typer.Option(24, "--max-timelines", help="Participants drawn as timelines (labelled first)."),
) -> None:
    """Write a self-contained HTML evaluation report (figures, subgroup table, methods paragraph)."""
    from streams.report import ReportError, write_report

    try:
        path = write_report(run_dir, out or Path(run_dir) / "report.html", max_timelines=max_timelines)
    except (ReportError, OSError) as e:
        _fail(f"report: {e}")
    typer.echo(f"report -> {path}")



@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the simulated cohorts, model and run folders."),
    participants: int = typer.Option(120, "--participants", help="Training cohort size."),
    test_participants: int = typer.Option(80, "--test-participants", help="Held-out test cohort size."),
    days: int = typer.Option(120, "--days"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """The main job with no servers: simulate, train, replay every detector on held-out participants, compare."""
    from streams.cohort import CohortError
    from streams.demo import run_demo

    try:
        run_demo(out, participants, test_participants, days, seed, say=typer.echo, progress_factory=_progress)
    except (CohortError, ValueError, OSError) as e:
        _fail(f"demo: {e}")


@app.command("simulate")
def simulate_cmd(
    out: Path = typer.Option(Path("cohorts/sim"), "--out", help="Cohort folder to write."),
    participants: int = typer.Option(200, "--participants", help="Number of participants."),
    days: int = typer.Option(120, "--days", help="Days per participant."),
    seed: int = typer.Option(7, "--seed", help="Same seed and settings give byte-identical files."),
    start_date: str = typer.Option("2024-01-01", "--start-date", help="First local day (YYYY-MM-DD)."),
    infected_fraction: float = typer.Option(0.3, "--infected-fraction", help="Average share infected during the study."),
    ehr_fraction: float = typer.Option(0.7, "--ehr-fraction", help="Share of participants with an EHR record."),
    raw: int = typer.Option(0, "--raw", help="The first N participants also get raw PPG/ACC (00:00-02:00 each night, 32 Hz)."),
) -> None:
    """Simulate a cohort: minute HR/steps, sleep-time temperature/breathing, IBI segments, infections, stressors, EHR."""
    import time

    from streams.simulate import simulate_cohort

    prog, adv = _progress(participants, "simulate")
    t = time.perf_counter()
    try:
        with prog:
            path = simulate_cohort(out, participants=participants, days=days, seed=seed, start_date=start_date,
                                   infected_fraction=infected_fraction, ehr_fraction=ehr_fraction,
                                   raw_participants=raw, progress=adv)
    except (ValueError, OSError) as e:
        _fail(f"simulate: {e}")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    typer.echo(f"simulate: {participants} participants x {days} days (seed {seed}) in {time.perf_counter() - t:.1f} s, "
               f"{size / 1e6:.1f} MB -> {path}")


@import_app.command("spcup")
def import_spcup_cmd(
    src: Path = typer.Argument(..., help="Folder with SP Cup 2015 .mat recordings (DATA_*.mat / TEST_*.mat and BPM files)."),
    out: Path = typer.Option(..., "--out", help="Cohort folder to write."),
) -> None:
    """Import SP Cup 2015 wrist PPG/ACC recordings as raw waveforms, with reference HR (hr_ref.npz)."""
    from streams.cohort import CohortError
    from streams.importers.spcup import import_spcup

    try:
        path = import_spcup(src, out)
    except (CohortError, OSError) as e:
        _fail(f"import spcup: {e}")
    n = sum(1 for d in (path / "data").iterdir() if d.is_dir())
    refs = sum(1 for d in (path / "data").iterdir() if (d / "hr_ref.npz").is_file())
    typer.echo(f"spcup: {n} recordings ({refs} with reference HR) -> {path}")


# ---- infra: produce (replay a cohort into Kafka), worker ----


def _settings(config, overrides: dict):
    from streams.settings import SettingsError, load_settings

    try:
        return load_settings(config=config, overrides=overrides)
    except SettingsError as e:
        _fail(str(e))


@app.command("produce")
def produce_cmd(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap URL (kafka://host:port); default from settings."),
    speed: float = typer.Option(0.0, "--speed", help="Event-time speed-up (3600 = one recorded hour per second); 0 = as fast as possible."),
    chunk_s: float = typer.Option(3600.0, "--chunk-s", help="Seconds of derived samples per message."),
    wave_chunk_s: float = typer.Option(60.0, "--wave-chunk-s", help="Seconds of raw waveform per message."),
    codec: str = typer.Option("binary", "--codec", help="binary or json."),
    partitions: int = typer.Option(None, "--partitions", help="Create missing input topics with this many partitions."),
    limit: int = typer.Option(None, "--limit", help="Only the first N participants."),
    config: Path = typer.Option(None, "--config", help="TOML settings file (also $PRODROMAL_CONFIG)."),
) -> None:
    """Publish a recorded cohort into Kafka in event-time order, chunked and keyed by participant."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from streams.cohort import CohortError
    from streams.produce import produce

    s = _settings(config, {"kafka.broker": broker})
    prog = Progress(TextColumn("produce"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[samples]} samples"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)

    def factory(total: int):
        task = prog.add_task("produce", total=total, samples=0)
        done = {"samples": 0}

        def adv(n: int, samples: int) -> None:
            done["samples"] += samples
            prog.update(task, advance=n, samples=done["samples"])

        return adv

    try:
        with prog:
            st = produce(cohort, s.kafka, speed=speed, chunk_s=chunk_s, wave_chunk_s=wave_chunk_s, codec=codec,
                         partitions=partitions, limit=limit, progress_factory=factory)
    except (CohortError, ValueError, OSError) as e:
        _fail(f"produce: {e}")
    except Exception as e:  # broker errors: name the type, never the payload
        _fail(f"produce: Kafka error: {type(e).__name__}: {e}")
    typer.echo(f"produce: {st.participants} participants, {st.messages} messages, {st.samples} samples, "
               f"{st.bytes / 1e6:.1f} MB in {st.seconds:.1f} s ({st.samples_per_s:,.0f} samples/s, "
               f"{st.messages / max(st.seconds, 1e-9):,.0f} messages/s) -> {s.kafka.broker}")


@app.command("worker")
def worker_cmd(
    broker: str = typer.Option(None, "--broker", help="Kafka bootstrap URL; default from settings (PRODROMAL_KAFKA__BROKER)."),
    influx_url: str = typer.Option(None, "--influx-url", help="InfluxDB URL (token from PRODROMAL_INFLUX__TOKEN[_FILE])."),
    detector: str = typer.Option(None, "--detector", help="nightsignal, cusum, forest, lightgbm, early, late."),
    model: Path = typer.Option(None, "--model", help="Model artifact folder (trained detectors)."),
    cohort: str = typer.Option(None, "--cohort", help="Cohort tag written on every point."),
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning, error."),
    config: Path = typer.Option(None, "--config", help="TOML settings file (also $PRODROMAL_CONFIG)."),
) -> None:
    """Run a Faust worker: consume wearable topics, score nights, write alerts to Kafka and InfluxDB."""
    from streams.worker import WorkerError, create_app

    s = _settings(config, {"kafka.broker": broker, "influx.url": influx_url, "worker.detector": detector,
                           "worker.model": str(model) if model else None, "worker.cohort": cohort})
    try:
        app_ = create_app(s)  # loads and checks the model before connecting
    except WorkerError as e:
        _fail(f"worker: {e}")
    import faust

    faust.Worker(app_, loglevel=loglevel, quiet=True).execute_from_commandline()


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
