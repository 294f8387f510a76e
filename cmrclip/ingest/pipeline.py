"""The ingestion job: sources (folders, archives) -> de-identified study store, in parallel, resumable.

Steps: list files (archives opened) -> read headers in parallel -> group into studies -> per study (one worker
each, in parallel): plan views, read pixels, preprocess, write ``studies/<key>.h5`` atomically -> upsert the
manifest row in the parent -> join reports and labels -> write the fault report (sorted, de-duplicated).

Rerunning on the same input skips studies already stored (resume); the files written are byte-identical to a
clean run's, because every step is deterministic and HDF5 files carry no timestamps.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError
from cmrclip.ingest.deid import hash_key, redact, write_crosswalk
from cmrclip.ingest.faults import Fault, append_faults, read_faults
from cmrclip.ingest.joins import ReportScrubber, join_labels, join_reports
from cmrclip.ingest.manifest import set_column
from cmrclip.ingest.nifti import find_nifti_studies, is_nifti, process_nifti_study
from cmrclip.ingest.scan import FileRef, Header, expand_sources, read_header
from cmrclip.ingest.series import group_studies
from cmrclip.ingest.store import StudyStore
from cmrclip.ingest.study import StudyResult, StudyTask, process_study
from cmrclip.progress import ProgressFn, null_progress

__all__ = ["IngestConfig", "IngestSummary", "ingest"]

logger = logging.getLogger(__name__)

ViewName = Literal["SAX", "2CH", "3CH", "4CH"]
T = TypeVar("T")
R = TypeVar("R")


class IngestConfig(StrictModel):
    """Options of ``cmrclip ingest`` (defaults in ``cmrclip/configs/ingest.yaml``)."""

    salt: SecretStr = SecretStr("")
    site: str = ""
    spacing_mm: float = Field(1.25, ge=0.3, le=4.0)
    crop_size: int = Field(192, ge=16, le=1024)
    window_percentiles: tuple[float, float] = (0.5, 99.5)
    min_phases: int = Field(6, ge=2)
    compression: Literal["gzip", "lzf"] = "gzip"
    workers: int = Field(0, ge=0)
    views_file: Path | None = None
    fallback_view: ViewName | None = None
    crosswalk_file: Path | None = None
    work_dir: Path | None = None
    shard: tuple[int, int] = (0, 1)
    nifti_keyframes: bool = True
    edes_frames: int = Field(20, ge=0)


@dataclass
class IngestSummary:
    """Counts of one ingestion run."""

    files: int = 0
    studies_found: int = 0
    stored: int = 0
    partial: int = 0
    rejected: int = 0
    already_stored: int = 0
    other_shards: int = 0
    views_stored: int = 0
    faults: int = 0
    reports_joined: int = 0
    labels_joined: int = 0
    seconds: float = 0.0
    rejected_keys: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One-line summary for the CLI."""
        return (
            f"{self.studies_found} studies in {self.files} files: {self.stored} stored, {self.partial} partially, "
            f"{self.rejected} rejected, {self.already_stored} already in the store, {self.other_shards} left to other "
            f"shards; {self.views_stored} views; "
            f"{self.faults} faults listed; {self.reports_joined} reports, {self.labels_joined} label rows joined; "
            f"{self.seconds:.1f} s"
        )


def _pool_map(fn: Callable[[T], R], items: Sequence[T], workers: int, chunksize: int = 1) -> Iterator[R]:
    """Map in a process pool (or inline for one worker), results in completion order."""
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, len(items)), maxtasksperchild=50) as pool:
        yield from pool.imap_unordered(fn, items, chunksize=chunksize)


def _scan(refs: list[FileRef], workers: int, progress: ProgressFn) -> tuple[list[Header], list[Fault]]:
    headers: list[Header] = []
    faults: list[Fault] = []
    for i, out in enumerate(_pool_map(read_header, refs, workers, chunksize=32), start=1):
        if isinstance(out, Fault):
            faults.append(out)
        else:
            headers.append(out)
        progress("scan headers", i, len(refs))
    return headers, faults


def _identifiers(studies: dict[str, list[Header]], salt: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Map every identifier seen to its key (for redaction), and each study key to its identifiers."""
    to_key: dict[str, str] = {}
    per_study: dict[str, list[str]] = {}
    for ident, hs in studies.items():
        skey = hash_key(ident, salt)
        to_key[ident] = skey
        ids = {ident}
        for h in hs:
            pkey = hash_key(h.patient_id or ident, salt)
            names = [h.patient_name, h.patient_name.replace("^", " ").strip()]
            names += [part for part in h.patient_name.split("^") if len(part.strip()) >= 3]
            for value in (v.strip() for v in (h.patient_id, h.birth_date, *names)):
                if value:
                    to_key[value] = pkey
                    ids.add(value)
            if h.institution.strip():
                ids.add(h.institution.strip())  # scrubbed from reports; site names come from the label table
            for value in (h.accession, h.study_uid):
                if value:
                    to_key[value] = skey
                    ids.add(value)
        per_study[skey] = sorted(ids)
    return to_key, per_study


def _tasks(studies: dict[str, list[Header]], store: StudyStore, cfg: IngestConfig, done: set[str]) -> list[StudyTask]:
    salt = cfg.salt.get_secret_value()
    opts = cfg.model_dump(mode="json", exclude={"salt", "crosswalk_file", "work_dir"})
    i, n = cfg.shard
    tasks = []
    for ident, hs in studies.items():
        key = hash_key(ident, salt)
        if int(key, 16) % n != i or key in done:
            continue
        patient = hash_key(hs[0].patient_id or ident, salt)
        tasks.append(StudyTask(key, patient, cfg.site, hs, store.root, opts))
    return tasks


def _nifti_tasks(
    studies: dict[str, dict[str, list[tuple[str, FileRef]]]], store: StudyStore, cfg: IngestConfig, done: set[str]
) -> list[StudyTask]:
    salt = cfg.salt.get_secret_value()
    opts = cfg.model_dump(mode="json", exclude={"salt", "crosswalk_file", "work_dir"})
    i, n = cfg.shard
    tasks = []
    for subject, files in studies.items():
        key = hash_key(subject, salt)
        if int(key, 16) % n == i and key not in done:
            tasks.append(StudyTask(key, key, cfg.site, [], store.root, opts, nifti_files=files))
    return tasks


def _process(task: StudyTask) -> StudyResult:
    """Worker entry point: the NIfTI or the DICOM path."""
    return process_nifti_study(task) if task.nifti_files else process_study(task)


def _finish_report(store: StudyStore, new: Iterable[Fault]) -> int:
    """Merge new faults into the report, de-duplicated and sorted, written atomically; return its length."""
    faults = sorted(set(read_faults(store.report_path)) | set(new))
    tmp = store.report_path.with_suffix(".tmp")
    tmp.write_text("".join(f.to_json() + "\n" for f in faults), encoding="utf-8")
    tmp.replace(store.report_path)
    return len(faults)


_PIXEL_OPTIONS = (
    "spacing_mm",
    "crop_size",
    "window_percentiles",
    "min_phases",
    "compression",
    "views_file",
    "fallback_view",
    "nifti_keyframes",
    "edes_frames",
)


def _check_options(store: StudyStore, cfg: IngestConfig) -> None:
    """Record the options that shape stored pixels; refuse to resume a store built with other ones."""
    path = store.root / "ingest_options.json"
    mine = {k: v for k, v in cfg.model_dump(mode="json").items() if k in _PIXEL_OPTIONS}
    if path.is_file():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in mine if theirs.get(k) != mine[k])
        if diff:
            got = ", ".join(f"{k}={theirs.get(k)!r} (now {mine[k]!r})" for k in diff)
            raise ConfigError(f"store {store.root} was built with {got}; use the same options or a new --out")
        return
    path.write_text(json.dumps(mine, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _remove_stale_temps(store: StudyStore) -> None:
    """Delete half-written study files (``.<key>.h5.<pid>.tmp``) left by a killed run whose process is gone."""
    for tmp in sorted((store.root / "studies").glob(".*.h5.*.tmp")):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            logger.info("removing %s, left by a killed run", tmp.name)
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check(cfg: IngestConfig) -> str:
    salt = cfg.salt.get_secret_value()
    if not salt:
        raise ConfigError("ingest needs a salt: pass --salt or set CMRCLIP_SALT (keep it secret; it is not stored)")
    i, n = cfg.shard
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n} is invalid: need 0 <= i < n")
    return salt


def _redact_fault(fault: Fault, redactions: dict[str, str]) -> Fault:
    """The fault with identifiers in its file name and its reason (which may name other files) replaced by keys."""
    return Fault(fault.study, redact(fault.file, redactions), fault.stage, redact(fault.reason, redactions))


def _run_studies(
    tasks: list[StudyTask], store: StudyStore, workers: int, redactions: dict[str, str], progress: ProgressFn
) -> tuple[list[StudyResult], list[Fault]]:
    results: list[StudyResult] = []
    faults: list[Fault] = []
    for i, res in enumerate(_pool_map(_process, tasks, workers), start=1):
        res_faults = [_redact_fault(f, redactions) for f in res.faults]
        append_faults(store.report_path, res_faults)  # kept even if the run is killed
        faults += res_faults
        if res.row is not None:
            store.upsert(res.row)
        results.append(res)
        progress("ingest studies", i, len(tasks))
    return results, faults


def ingest(
    sources: Sequence[Path],
    store_dir: Path,
    config: IngestConfig | None = None,
    scrub_report: ReportScrubber | None = None,
    progress: ProgressFn = null_progress,
    reports: Path | None = None,
    labels: Path | None = None,
) -> IngestSummary:
    """Ingest DICOM folders/archives into the study store at ``store_dir`` (created if needed).

    Args:
        sources: Folders, files, zip or tar archives.
        store_dir: The store (resumed when it exists: stored studies are skipped).
        config: Options; ``salt`` is required.
        scrub_report: De-identifies report text (``cmrclip.text.deid.deidentify`` wrapped by the CLI).
        progress: Progress callback.
        reports: Optional CSV/JSONL of (study identifier, report text).
        labels: Optional CSV/JSONL of (study identifier, label columns).

    Raises:
        ConfigError: without a salt, or with an invalid shard.
    """
    cfg = config or IngestConfig()
    salt = _check(cfg)
    start = time.perf_counter()
    store = StudyStore.create(store_dir)
    _check_options(store, cfg)
    _remove_stale_temps(store)
    workers = cfg.workers or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="cmrclip-ingest-", dir=cfg.work_dir))
    try:
        scan_faults: list[Fault] = []
        refs = expand_sources(sources, work, scan_faults)
        nifti = find_nifti_studies([r for r in refs if is_nifti(r.name)], cfg.nifti_keyframes, scan_faults)
        headers, more = _scan([r for r in refs if not is_nifti(r.name)], workers, progress)
        studies = group_studies(headers)
        redactions, per_study = _identifiers(studies, salt)
        per_study.update({hash_key(subject, salt): [subject] for subject in nifti})
        scan_faults = [_redact_fault(f, redactions) for f in scan_faults + more]
        append_faults(store.report_path, scan_faults)
        existing = set(store.manifest()["study_key"])
        done = {k for k in existing if store.study_path(k).is_file()}
        tasks = _tasks(studies, store, cfg, done) + _nifti_tasks(nifti, store, cfg, done)
        results, faults = _run_studies(tasks, store, workers, redactions, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = [hash_key(ident, salt) for ident in [*studies, *nifti]]
    mine = [k for k in keys if int(k, 16) % cfg.shard[1] == cfg.shard[0]]
    summary = _summarise(results, len(refs), len(keys), len(set(mine) & done))
    summary.other_shards = len(keys) - len(mine)
    faults += _join(store, salt, per_study, scrub_report, reports, labels, summary)
    if cfg.crosswalk_file is not None:
        _crosswalk(cfg.crosswalk_file, studies, salt)
    summary.faults = _finish_report(store, scan_faults + faults)
    summary.seconds = time.perf_counter() - start
    logger.info("ingest: %s", summary.line())
    return summary


def _summarise(results: list[StudyResult], n_files: int, n_studies: int, skipped: int) -> IngestSummary:
    s = IngestSummary(files=n_files, studies_found=n_studies, already_stored=skipped)
    for r in results:
        s.stored += r.status == "stored"
        s.partial += r.status == "partial"
        s.rejected += r.status == "rejected"
        s.views_stored += r.n_views
        if r.status == "rejected":
            s.rejected_keys.append(r.study_key)
    return s


def _join(
    store: StudyStore,
    salt: str,
    per_study: dict[str, list[str]],
    scrub: ReportScrubber | None,
    reports: Path | None,
    labels: Path | None,
    summary: IngestSummary,
) -> list[Fault]:
    stored = set(store.manifest()["study_key"])
    faults: list[Fault] = []
    if reports is not None:
        texts, more = join_reports(Path(reports), salt, stored, per_study, scrub)
        store.set_reports(texts)
        summary.reports_joined = len(texts)
        faults += more
    if labels is not None:
        table, sites, more = join_labels(Path(labels), salt, stored)
        store.add_labels(table)
        set_column(store.manifest_path, "site", sites)
        summary.labels_joined = len(table)
        faults += more
    return faults


def _crosswalk(path: Path, studies: dict[str, list[Header]], salt: str) -> None:
    rows = []
    for ident, hs in studies.items():
        pid = hs[0].patient_id
        rows.append((hash_key(ident, salt), ident, hash_key(pid or ident, salt), pid))
    write_crosswalk(path, rows)
