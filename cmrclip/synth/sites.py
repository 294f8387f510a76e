"""Per-site acquisition profiles: scanner, matrix, spacing, phases, SNR, contrast and naming conventions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from cmrclip.errors import ConfigError

__all__ = ["SITES", "Site", "get_sites"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    """How one (fictional) hospital acquires, names and stores its cine CMR.

    ``sax_description`` may contain ``{n}`` (1-based slice number) when each SAX slice is its own series.
    ``file_naming``: ``im`` (``IM-0001-0001.dcm``), ``uid`` (SOPInstanceUID), ``seq`` (``00001``, no extension).
    ``instance_order``: ``phase_major`` (all phases of slice 1, then slice 2, ...) or ``slice_major``.
    """

    key: str
    institution: str
    manufacturer: str
    model: str
    field_strength: float
    rows: int
    cols: int
    fov_mm: float
    phases: tuple[int, int]
    slice_thickness: float
    slice_gap: float
    snr: float
    bias: float
    max_value: int
    blood: float
    myocardium: float
    fat: float
    sax_description: str
    lax_descriptions: tuple[str, str, str]
    sax_one_series: bool
    file_naming: str
    instance_order: str
    basal_extra: bool
    mrn_prefix: str
    accession_prefix: str
    ghost: float = 0.0

    def lax(self, view: str) -> str:
        """SeriesDescription of a long-axis view (``2CH``, ``3CH``, ``4CH``)."""
        return self.lax_descriptions[("2CH", "3CH", "4CH").index(view)]


SITES: dict[str, Site] = {
    s.key: s
    for s in (
        Site(
            "northfield", "Northfield General Hospital", "GE MEDICAL SYSTEMS", "SIGNA Artist", 1.5,
            192, 192, 340.0, (20, 20), 8.0, 2.0, 28.0, 0.25, 1500, 0.92, 0.26, 0.80,
            "SAX_FIESTA_BH", ("2CH_FIESTA_BH", "3CH_FIESTA_BH", "4CH_FIESTA_BH"), True, "im", "phase_major",
            True, "NF", "NFA",
        ),
        Site(
            "riverside", "Riverside University Medical Center", "SIEMENS", "MAGNETOM Aera", 1.5,
            156, 192, 320.0, (25, 25), 6.0, 2.0, 22.0, 0.35, 4095, 0.88, 0.24, 0.85,
            "CINE_segmented_SAX_b{n}",
            ("CINE_segmented_LAX_2Ch", "CINE_segmented_LAX_3Ch", "CINE_segmented_LAX_4Ch"),
            False, "uid", "phase_major", False, "", "RS", 0.03,
        ),
        Site(
            "lakeshore", "Lakeshore Heart Institute", "Philips", "Ingenia", 3.0,
            176, 176, 330.0, (30, 30), 8.0, 0.0, 18.0, 0.45, 2500, 0.95, 0.30, 0.75,
            "sBTFE_SA", ("sBTFE_2CH", "sBTFE_3CH", "sBTFE_4CH"), True, "seq", "slice_major", True, "LHI", "LK",
        ),
        Site(
            "hillcrest", "Hillcrest Children's and Adult Hospital", "SIEMENS", "MAGNETOM Skyra", 3.0,
            128, 128, 300.0, (40, 50), 7.0, 3.0, 14.0, 0.5, 4095, 0.9, 0.22, 0.9,
            "cine_sa", ("cine_2ch", "cine_3ch", "cine_4ch"), True, "uid", "phase_major", False, "HC", "HCA", 0.05,
        ),
        Site(
            "valleyview", "Valley View Regional Medical Center", "GE MEDICAL SYSTEMS", "Discovery MR450", 1.5,
            160, 160, 360.0, (20, 30), 10.0, 0.0, 25.0, 0.3, 1200, 0.85, 0.28, 0.7,
            "FIESTA CINE SAX {n}", ("FIESTA CINE 2CH", "FIESTA CINE LVOT", "FIESTA CINE 4CH"), False, "im",
            "slice_major", True, "VV", "VVR",
        ),
    )
}  # fmt: skip


def get_sites(keys: list[str] | None = None, matrix: int | None = None, phases: int | None = None) -> list[Site]:
    """Return the named sites (all when ``keys`` is None), optionally shrunk for tests.

    Args:
        keys: site keys, e.g. ``["northfield", "riverside"]``.
        matrix: cap the larger matrix side at this many pixels (the field of view shrinks in proportion to keep
            the pixel size sensible).
        phases: use exactly this many cardiac phases.

    Raises:
        ConfigError: for an unknown site key.
    """
    keys = keys if keys else list(SITES)
    unknown = [k for k in keys if k not in SITES]
    if unknown:
        raise ConfigError(f"unknown site(s) {unknown}; choose from {sorted(SITES)} (option --sites a,b)")
    out = []
    for key in keys:
        site = SITES[key]
        if matrix and max(site.rows, site.cols) > matrix:
            f = matrix / max(site.rows, site.cols)
            pixel = site.fov_mm / max(site.rows, site.cols)
            rows, cols = round(site.rows * f), round(site.cols * f)
            site = replace(site, rows=rows, cols=cols, fov_mm=max(rows, cols) * max(pixel, 260.0 / matrix))
        if phases:
            site = replace(site, phases=(phases, phases))
        out.append(site)
    return out
