"""The cine filter: bSSFP-like cines are kept; flow, LGE, localisers and maps are skipped with a reason."""

from __future__ import annotations

import dataclasses

import pydicom
import pytest

from cmrclip.ingest.conftest import DESCRIPTIONS, header
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.scan import FileRef, Header, read_header
from cmrclip.ingest.series import cine_skip_reason
from cmrclip.ingest.store import StudyStore

BASE = dataclasses.replace(
    header("x.dcm", (0.0, 0.0, 0.0), 0.0, 1, sop=""),
    patient_name="",
    series_number=3,
    image_type=("ORIGINAL", "PRIMARY"),
    sequence_name="",
    scanning_sequence=("GR",),
)


def series(n_phases: int = 20, **kw) -> list[Header]:
    """One slice of ``n_phases`` images 40 ms apart, with the header fields in ``kw``."""
    return [
        dataclasses.replace(BASE, sop_uid=f"1.{i}", trigger_time=40.0 * i, instance_number=i + 1, **kw)
        for i in range(n_phases)
    ]


@pytest.mark.parametrize(
    "fields",
    [
        # what cmrclip.synth.dicom writes (no ImageType, no SequenceName), for every site's descriptions
        *[{"series_description": d, "image_type": ()} for d in ("SAX_FIESTA_BH", "CINE_segmented_SAX_b3", "sBTFE_SA")],
        *[{"series_description": d, "image_type": ()} for d in ("cine_3ch", "FIESTA CINE LVOT", "FIESTA CINE SAX 7")],
        # vendor-typical bSSFP cines
        {
            "series_description": "CINE_segmented_LAX_4Ch",
            "sequence_name": "*tfi2d1_25",
            "image_type": ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D", "RETRO"),
        },
        {"series_description": "SAX_FIESTA_BH", "sequence_name": "fiestac", "scanning_sequence": ("GR",)},
        {"series_description": "", "scanning_sequence": (), "image_type": ("ORIGINAL", "PRIMARY", "CARDIAC")},
    ],
)
def test_bssfp_cines_kept(fields):
    assert cine_skip_reason(series(**fields), min_phases=6) is None


@pytest.mark.parametrize(
    ("fields", "n_phases", "reason"),
    [
        ({"image_type": ("ORIGINAL", "PRIMARY", "P", "RETRO")}, 30, "ImageType P"),
        ({"image_type": ("DERIVED", "PRIMARY", "PHASE", "NONE")}, 30, "ImageType PHASE"),
        ({"image_type": ("ORIGINAL", "PRIMARY", "VELOCITY")}, 30, "ImageType VELOCITY"),
        ({"series_description": "flow_Ao_mag", "image_type": ("ORIGINAL", "PRIMARY", "M")}, 30, "phase contrast"),
        ({"series_description": "PC_MPA_through"}, 30, "phase contrast"),
        ({"series_description": "AAo VENC 150"}, 30, "phase contrast"),
        ({"series_description": "Ao", "sequence_name": "*fl2d1_v150in"}, 30, "SequenceName '*fl2d1_v150in'"),
        ({"series_description": "", "sequence_name": "2DFASTPC"}, 30, "phase contrast"),
        ({"series_description": "LGE_PSIR_SAX", "scanning_sequence": ("GR", "IR")}, 1, "inversion recovery"),
        ({"series_description": "LGE_SAX", "scanning_sequence": ()}, 1, "late gadolinium enhancement"),
        ({"series_description": "", "scanning_sequence": ()}, 1, "1 phase(s) < 6"),  # LGE without names
        ({"series_description": "TI_Scout", "scanning_sequence": ()}, 20, "late gadolinium enhancement"),
        ({"series_description": "localizer"}, 1, "a localiser"),
        ({"series_description": "3-plane loc"}, 3, "a localiser"),
        ({"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, 1, "ImageType LOCALIZER"),
        ({"series_description": "MOLLI_5(3)3_SAX"}, 8, "a parametric map"),
        ({"scanning_sequence": ("SE",), "series_description": "HASTE_tra"}, 20, "not a gradient-echo"),
        ({"series_description": "cine_sa"}, 4, "4 phase(s) < 6"),
    ],
)
def test_non_cines_skipped_with_reason(fields, n_phases, reason):
    why = cine_skip_reason(series(n_phases, **fields), min_phases=6)
    assert why is not None and reason in why, why


def test_header_reads_sequence_fields_and_single_valued_image_type(tmp_path, cine_factory):
    folder = cine_factory(tmp_path, "MRN1", "ACC1", n_slices=1, n_phases=2, rows=8, views=("SAX",))
    path = sorted((folder / "s2").glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    ds.ImageType = "PRIMARY"  # a single value must not be split into letters ("P" would mean phase contrast)
    ds.SequenceName, ds.ScanningSequence = "*fl2d1_v150in", ["GR", "IR"]
    ds.save_as(path)
    h = read_header(FileRef(path.name, path))
    assert isinstance(h, Header)
    assert (h.image_type, h.sequence_name, h.scanning_sequence) == (("PRIMARY",), "*fl2d1_v150in", ("GR", "IR"))


def _add_series(src_folder, dst_folder, number: int, **attrs) -> None:
    """Copy a series as a new one (new UIDs, number, and the given attributes)."""
    dst_folder.mkdir()
    for i, path in enumerate(sorted(src_folder.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = f"2.25.{number}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{number}.{i + 1}"
        ds.SeriesNumber = number
        for key, value in attrs.items():
            setattr(ds, key, value)
        ds.save_as(dst_folder / path.name)


def test_flow_and_lge_series_skipped_in_a_study(tmp_path, cine_factory):
    folder = cine_factory(tmp_path / "dicom", "MRN2", "ACC2", n_slices=3, n_phases=6, rows=16)
    four_ch = next(p for p in folder.iterdir() if p.is_dir() and p.name == "s3")  # series 3 = 4CH
    assert pydicom.dcmread(next(four_ch.glob("*.dcm"))).SeriesDescription == DESCRIPTIONS["4CH"]
    _add_series(four_ch, folder / "pc", 20, SeriesDescription="4CH", ImageType=["ORIGINAL", "PRIMARY", "P", "RETRO"])
    _add_series(four_ch, folder / "mag", 21, SeriesDescription="flow_4ch_mag", SequenceName="*fl2d1r3_v150in")
    _add_series(four_ch, folder / "lge", 22, SeriesDescription="LGE_4ch", ScanningSequence=["GR", "IR"])
    summary = ingest([tmp_path / "dicom"], tmp_path / "store", IngestConfig(salt="s", workers=1, crop_size=16))
    assert (summary.stored, summary.partial) == (1, 0)
    store = StudyStore(tmp_path / "store")
    reasons = {f["reason"] for f in store.faults()}
    assert "skipped series 20: ImageType P: not a cine" in reasons
    assert "skipped series 21: SeriesDescription 'flow_4ch_mag' suggests phase contrast (flow): not a cine" in reasons
    assert any(r.startswith("skipped series 22: ScanningSequence GR/IR (inversion recovery") for r in reasons)
    with store.open(hash_key("ACC2", "s")) as study:
        assert sorted(study.views) == ["2CH", "3CH", "4CH", "SAX"]
        assert study.view_attrs("4CH")["series_description"] == DESCRIPTIONS["4CH"]
