"""Plan a cohort: fake patients and identifiers, sites, dates, repeat studies and each study's conditions."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np

from cmrclip.synth.dicom import Patient, uid
from cmrclip.synth.phenotypes import sample_conditions
from cmrclip.synth.sites import Site, get_sites

__all__ = ["StudyPlan", "plan_cohort"]

logger = logging.getLogger(__name__)

_MALE = ("JAMES", "ROBERT", "MICHAEL", "DAVID", "WILLIAM", "JOSE", "WEI", "AHMED", "RAJ", "KWAME", "LUCAS", "IVAN")
_FEMALE = ("MARY", "PATRICIA", "JENNIFER", "LINDA", "MARIA", "LI", "FATIMA", "PRIYA", "AMARA", "SOFIA", "ANNA", "YUKI")
_SURNAMES = ("SMITH", "JOHNSON", "WILLIAMS", "GARCIA", "MARTINEZ", "NGUYEN", "PATEL", "KIM", "OKAFOR", "MUELLER",
             "ROSSI", "COHEN", "TANAKA", "SILVA", "OBRIEN", "HANSEN", "DUBOIS", "KOWALSKI", "ALI",
             "MENSAH")  # fmt: skip


@dataclass(frozen=True)
class StudyPlan:
    """Everything decided about a study before it is rendered."""

    index: int
    patient: Patient
    site: Site
    accession: str
    study_uid: str
    date: str
    time: str
    age: int
    conditions: tuple[str, ...]
    seed: tuple[int, ...]
    heart_seed: tuple[int, ...]
    kind: str


def _patient(rng: np.random.Generator, site: Site, used: set[str]) -> Patient:
    sex = "M" if rng.random() < 0.55 else "F"
    first = str(rng.choice(_MALE if sex == "M" else _FEMALE))
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 62)))
    while True:
        pid = (
            f"{site.mrn_prefix}{int(rng.integers(0, 10**7)):07d}"
            if site.mrn_prefix
            else f"{int(rng.integers(0, 10**8)):08d}"
        )
        if pid not in used:
            used.add(pid)
            break
    height = float(rng.normal(1.76 if sex == "M" else 1.63, 0.07))
    weight = float(np.clip(rng.normal(25, 4), 17, 40) * height**2)
    name = f"{rng.choice(_SURNAMES)}^{first}^{chr(65 + int(rng.integers(0, 26)))}"
    return Patient(pid, name, birth.strftime("%Y%m%d"), sex, round(weight, 1), round(height, 2))


def _accession(rng: np.random.Generator, site: Site, used: set[str]) -> str:
    while True:
        acc = f"{site.accession_prefix}{int(rng.integers(0, 10**8)):08d}"
        if acc not in used:
            used.add(acc)
            return acc


def _visits(n_studies: int, rng: np.random.Generator, repeat_fraction: float) -> list[int]:
    """Number of studies per patient (1 or 2), summing to ``n_studies``; the first patient has two when n >= 3."""
    visits: list[int] = []
    while sum(visits) < n_studies:
        room = n_studies - sum(visits)
        two = room >= 2 and ((not visits and n_studies >= 3 and repeat_fraction > 0) or rng.random() < repeat_fraction)
        visits.append(2 if two else 1)
    return visits


def plan_cohort(
    n_studies: int,
    seed: int,
    sites: list[str] | None,
    keys: list[str],
    matrix: int | None = None,
    phases: int | None = None,
    repeat_fraction: float = 0.2,
) -> list[StudyPlan]:
    """Plan every study of the cohort (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 20])
    site_list = get_sites(sites, matrix=matrix, phases=phases)
    order = rng.permutation(len(site_list))
    used_pid: set[str] = set()
    used_acc: set[str] = set()
    plans: list[StudyPlan] = []
    for p_idx, n_visits in enumerate(_visits(n_studies, rng, repeat_fraction)):
        site = site_list[int(order[p_idx % len(site_list)])]
        patient = _patient(rng, site, used_pid)
        conditions = tuple(sample_conditions(rng, keys))
        date = dt.date(2017, 1, 1) + dt.timedelta(days=int(rng.integers(0, 2200)))
        heart_seed = (seed, 1, p_idx)
        for visit in range(n_visits):
            kind = "first" if visit == 0 else ("rescan" if rng.random() < 0.4 else "follow-up")
            if visit:
                date += dt.timedelta(days=int(rng.integers(1, 15) if kind == "rescan" else rng.integers(150, 900)))
            born = dt.datetime.strptime(patient.birth_date, "%Y%m%d").replace(tzinfo=dt.UTC).date()
            age = (date - born).days // 365
            acc = _accession(rng, site, used_acc)
            time = f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}00"
            idx = len(plans)
            study_uid = uid(seed, "study", idx, acc)
            plans.append(StudyPlan(idx, patient, site, acc, study_uid, date.strftime("%Y%m%d"), time, age,
                                   conditions, (seed, 2, idx), heart_seed if kind != "follow-up" else (seed, 3, idx),
                                   kind))  # fmt: skip
    logger.info("planned %d studies of %d patients", len(plans), len({p.patient.patient_id for p in plans}))
    return plans
