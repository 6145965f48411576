"""IEEE Signal Processing Cup 2015 (TROIKA) recordings -> a prodromal cohort with raw waveforms.

Source layout (any folder, searched recursively):

* training recordings ``DATA_01_TYPE01.mat`` ... and ``DATA_S04_T01.mat``:
  variable ``sig``, 6 x N at 125 Hz, rows ECG, PPG1, PPG2, ACCx, ACCy, ACCz;
* test recordings ``TEST_S01_T01.mat`` ...: ``sig``, 5 x N, rows PPG1, PPG2, ACCx, ACCy, ACCz;
* reference heart rate ``<name>_BPMtrace.mat``, ``BPM_<suffix>.mat`` or
  ``True_<suffix>.mat``: variable ``BPM0``, one value per 8 s window advanced 2 s
  (window k covers samples ``250 k ... 250 k + 999``).

What is written, per recording (participant id = file stem, e.g. ``DATA_01_TYPE01``):

``data/<id>/ppg.npz``, ``data/<id>/acc.npz``
    Waveforms (cohort format): ``fs`` = 125, one segment starting at ``T0``
    (2015-01-01T00:00:00Z; the recordings carry no clock), ``ppg`` (2, N),
    ``acc`` (3, N) in the sensor's units (about g). The ECG row is not kept.
``data/<id>/hr_ref.npz``
    Reference (ECG-derived) heart rate, the truth for evaluation - not a device
    stream, so the pipeline never reads it as ``hr``: ``time`` (UTC s of each
    window's centre), ``start_s`` (window start, s from the first sample),
    ``hr_bpm`` (float32), ``window_s`` = 8, ``step_s`` = 2. Read it with
    :func:`read_hr_ref`.

A malformed file (no ``sig``, wrong row count, non-numeric or empty data, or a
reference without ``BPM0``) raises :class:`streams.cohort.CohortError` naming the
file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from streams.cohort import CohortError, CohortWriter, Participant, Waveform

__all__ = ["import_spcup", "read_hr_ref", "load_recording", "find_recordings", "ref_names", "FS", "T0"]

FS = 125.0
T0 = 1420070400.0  # 2015-01-01T00:00:00Z
WINDOW_S = 8.0
STEP_S = 2.0
#: A TROIKA recording is ~1 MB; anything past this is a wrong file, not a longer recording.
MAX_FILE_BYTES = 512 * 1024**2
_REC = re.compile(r"^(DATA_\d+_TYPE\d+|DATA_S\d+_T\d+|TEST_S\d+_T\d+)\.mat$", re.IGNORECASE)


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat  # scipy.io is slow to import; only importers need it

    if path.stat().st_size > MAX_FILE_BYTES:
        raise CohortError(f"{path}: larger than {MAX_FILE_BYTES} bytes: not an SP Cup recording")
    from streams.importers.mat_guard import check_mat5

    check_mat5(path)  # scipy's reader faults the process (SIGBUS) on some corrupt type fields
    try:
        return loadmat(str(path))
    except Exception as e:  # scipy raises many types for a corrupt file
        raise CohortError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from e


def ref_names(rec: Path) -> list[str]:
    """File names that may hold the reference HR of a recording, in order of preference."""
    stem = rec.stem
    suffix = stem.split("_", 1)[1] if "_" in stem else stem  # DATA_S04_T01 -> S04_T01, TEST_S01_T01 -> S01_T01
    return [f"{stem}_BPMtrace.mat", f"BPM_{suffix}.mat", f"True_{suffix}.mat"]


def find_recordings(src: str | Path) -> list[Path]:
    """Recording files under ``src`` (training, extra and test layouts), sorted by name."""
    src = Path(src)
    if not src.is_dir():
        raise CohortError(f"{src}: not a folder")
    return sorted((p for p in src.rglob("*.mat") if _REC.match(p.name)), key=lambda p: p.name)


def load_recording(path: str | Path, ref_path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read one recording: (ppg (2, N), acc (3, N), reference HR per window or None).

    Without ``ref_path`` the reference is looked for next to the recording.
    """
    path = Path(path)
    m = _loadmat(path)
    if "sig" not in m:
        raise CohortError(f"{path}: field 'sig' missing")
    try:
        if np.iscomplexobj(m["sig"]):  # the cast below would drop the imaginary part silently
            raise TypeError("complex")
        sig = np.asarray(m["sig"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CohortError(f"{path}: field 'sig' is not numeric") from e
    if sig.ndim != 2 or sig.shape[0] not in (5, 6) or sig.shape[1] < int(WINDOW_S * FS):
        raise CohortError(f"{path}: field 'sig' has shape {sig.shape}; expected 6 x N (ECG, PPG1, PPG2, ACCx/y/z) or 5 x N (no ECG), N >= {int(WINDOW_S * FS)}")
    bad = ~np.isfinite(sig)
    if bad.any():  # a regular waveform has no slot to drop a sample from; NaN would poison every filter
        raise CohortError(f"{path}: field 'sig': {int(bad.sum())} non-finite samples (first at column {int(np.argwhere(bad)[0][1]) + 1})")
    off = sig.shape[0] - 5
    ppg, acc = sig[off : off + 2], sig[off + 2 : off + 5]
    ref = None
    if ref_path is None:
        near = [path.parent / n for n in ref_names(path)]
        ref_path = next((f for f in near if f.is_file()), None)
    if ref_path is not None:
        r = _loadmat(Path(ref_path))
        if "BPM0" not in r:
            raise CohortError(f"{ref_path}: field 'BPM0' missing")
        try:
            if np.iscomplexobj(r["BPM0"]):
                raise TypeError("complex")
            ref = np.asarray(r["BPM0"], dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise CohortError(f"{ref_path}: field 'BPM0' is not numeric") from e
        if not np.all(np.isfinite(ref)):
            raise CohortError(f"{ref_path}: field 'BPM0': {int((~np.isfinite(ref)).sum())} non-finite values")
    return ppg, acc, ref


def import_spcup(src: str | Path, out: str | Path, name: str = "spcup2015") -> Path:
    """Import every SP Cup recording under ``src`` into a new cohort folder ``out``.

    Returns
    -------
    Path
        The cohort folder.

    Raises
    ------
    CohortError
        When ``src`` holds no recording or a file is malformed (names file and field).
    """
    recs = find_recordings(src)
    if not recs:
        raise CohortError(f"{src}: no SP Cup recordings (DATA_*.mat, TEST_*.mat) found")
    by_name = {f.name: f for f in Path(src).rglob("*.mat")}
    loaded = []
    for p in recs:  # validate everything before writing
        ref = next((by_name[n] for n in ref_names(p) if n in by_name), None)
        loaded.append((p, *load_recording(p, ref)))
    w = CohortWriter(out, name=name, source="IEEE SP Cup 2015 (TROIKA), Zhang et al. 2015, doi:10.1109/TBME.2014.2359372",
                     notes={"waveforms": ["ppg", "acc"], "truth": "data/<id>/hr_ref.npz (ECG-derived HR per 8 s window, step 2 s)",
                            "licence": "academic research use with citation (dataset readme)"})
    for p, ppg, acc, ref in loaded:
        pid = p.stem
        n = ppg.shape[1]
        seg = dict(fs=FS, seg_t0=np.array([T0]), seg_len=np.array([n], dtype=np.int64))
        w.add_participant(Participant(pid), waveforms={"ppg": Waveform("ppg", values=ppg, **seg), "acc": Waveform("acc", values=acc, **seg)})
        if ref is not None:
            start = np.arange(ref.size) * STEP_S
            np.savez(Path(out) / "data" / pid / "hr_ref.npz", time=T0 + start + WINDOW_S / 2, start_s=start,
                     hr_bpm=ref.astype(np.float32), window_s=np.float64(WINDOW_S), step_s=np.float64(STEP_S))
    return w.close()


def read_hr_ref(cohort: str | Path, pid: str) -> dict[str, np.ndarray] | None:
    """The reference HR of a participant (keys ``time``, ``start_s``, ``hr_bpm``, ``window_s``, ``step_s``), or None."""
    f = Path(cohort) / "data" / pid / "hr_ref.npz"
    if not f.is_file():
        return None
    with np.load(f, allow_pickle=False) as z:
        for k in ("time", "hr_bpm"):
            if k not in z.files:
                raise CohortError(f"{f}: participant {pid}: field {k!r} missing")
        return {k: z[k] for k in z.files}
