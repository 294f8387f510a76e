import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from cmrclip.serve.uploads import (
    UnsafeArchiveError,
    UnsupportedUploadError,
    UploadLimits,
    UploadTooLargeError,
    sniff_kind,
    unpack_upload,
)

SMALL = UploadLimits(max_upload_bytes=1 << 20, max_files=10, max_expanded_bytes=4 << 20, max_ratio=50)


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _fake_dicom() -> bytes:
    return b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4


def test_unpacks_a_zip_inside_the_work_folder(tmp_path):
    upload = _zip(tmp_path / "up.zip", {"a/1.dcm": _fake_dicom(), "a/2.dcm": _fake_dicom()})
    out = unpack_upload(upload, tmp_path / "work", SMALL)
    assert out.kind == "zip"
    assert out.n_files == 2
    assert sorted(p.name for p in out.path.rglob("*.dcm")) == ["1.dcm", "2.dcm"]
    assert out.path.is_relative_to(tmp_path / "work")


@pytest.mark.parametrize(
    ("name", "match"),
    [("../evil.dcm", r"outside the archive"), ("/abs/evil.dcm", "absolute"), ("C:/x.dcm", "absolute")],
)
def test_zip_slip_is_refused(tmp_path, name, match):
    upload = _zip(tmp_path / "up.zip", {"ok.dcm": _fake_dicom(), name: b"x"})
    with pytest.raises(UnsafeArchiveError, match=match):
        unpack_upload(upload, tmp_path / "work", SMALL)
    assert not (tmp_path / "evil.dcm").exists()
    assert not list((tmp_path / "work").rglob("*.dcm"))


def test_symlink_member_is_refused(tmp_path):
    upload = _zip(tmp_path / "up.zip", {"ok.dcm": _fake_dicom()}, symlink="link.dcm")
    with pytest.raises(UnsafeArchiveError, match="link or special file"):
        unpack_upload(upload, tmp_path / "work", SMALL)


def test_zip_bomb_refused_by_declared_size(tmp_path):
    upload = _zip(tmp_path / "bomb.zip", {"big.dcm": b"\x00" * (8 << 20)})
    assert upload.stat().st_size < 100_000
    with pytest.raises(UploadTooLargeError, match="declared expanded size"):
        unpack_upload(upload, tmp_path / "work", SMALL)


def test_zip_bomb_refused_by_ratio(tmp_path):
    upload = _zip(tmp_path / "bomb.zip", {"big.dcm": b"\x00" * (3 << 20)})
    with pytest.raises(UploadTooLargeError, match="zip bomb"):
        unpack_upload(upload, tmp_path / "work", SMALL)


def test_zip_whose_headers_understate_the_size_is_refused(tmp_path):
    data = bytes(range(256)) * 400
    upload = _zip(tmp_path / "lie.zip", {"x.dcm": data})
    raw = upload.read_bytes()
    true_size = len(data).to_bytes(4, "little")
    assert raw.count(true_size) == 2  # local header and central directory
    upload.write_bytes(raw.replace(true_size, (1000).to_bytes(4, "little")))
    with pytest.raises(UnsafeArchiveError, match="does not match its header"):
        unpack_upload(upload, tmp_path / "work", SMALL)
    assert sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file()) <= 1000


def test_too_many_files_refused(tmp_path):
    upload = _zip(tmp_path / "many.zip", {f"{i}.dcm": b"x" for i in range(11)})
    with pytest.raises(UploadTooLargeError, match="more than 10 files"):
        unpack_upload(upload, tmp_path / "work", SMALL)


def test_tar_with_link_and_traversal_refused(tmp_path):
    for kind, member in [("link", tarfile.SYMTYPE), ("slip", tarfile.REGTYPE)]:
        path = tmp_path / f"{kind}.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo("../up.dcm" if kind == "slip" else "l.dcm")
            info.type = member
            info.linkname = "/etc/passwd"
            tf.addfile(info, io.BytesIO(b"") if kind == "slip" else None)
        with pytest.raises(UnsafeArchiveError):
            unpack_upload(path, tmp_path / f"work-{kind}", SMALL)


def test_tar_xz_unpacks(tmp_path):
    path = tmp_path / "s.tar.xz"
    with tarfile.open(path, "w:xz") as tf:
        data = _fake_dicom()
        info = tarfile.TarInfo("S/1.dcm")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    out = unpack_upload(path, tmp_path / "work", SMALL)
    assert out.kind == "tar"
    assert (out.path / "S" / "1.dcm").read_bytes() == data


def test_nifti_gz_is_decompressed_within_limits(tmp_path):
    header = bytearray(352)
    header[0:4] = (348).to_bytes(4, "little")
    header[344:348] = b"n+1\x00"
    path = tmp_path / "x.nii.gz"
    path.write_bytes(gzip.compress(bytes(header) + b"\x01" * 1000))
    out = unpack_upload(path, tmp_path / "work", SMALL)
    assert out.kind == "nifti_gz"
    assert out.path.read_bytes()[344:348] == b"n+1\x00"
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip.compress(bytes(header) + b"\x00" * (5 << 20)))
    with pytest.raises(UploadTooLargeError):
        unpack_upload(bomb, tmp_path / "work2", SMALL)


def test_junk_is_unsupported(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"this is not a medical image at all" * 20)
    with pytest.raises(UnsupportedUploadError, match="not a zip or tar"):
        sniff_kind(path)
    empty_zip = _zip(tmp_path / "empty.zip", {})
    with pytest.raises(UnsupportedUploadError, match="holds no files"):
        unpack_upload(empty_zip, tmp_path / "work", SMALL)
