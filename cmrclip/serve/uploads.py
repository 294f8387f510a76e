"""Safe handling of uploaded studies: size limits, archive expansion limits, and no paths outside the work folder.

An upload is one of: a zip archive of DICOM files, a tar archive (optionally gzip/xz/bz2-compressed) of DICOM files,
a NIfTI file (``.nii`` or ``.nii.gz``), or a single DICOM file. :func:`save_stream` writes the raw bytes into a work
folder while counting them; :func:`unpack_upload` turns the saved file into a folder of DICOM files or one NIfTI
file, checking every archive member's declared **and** actual size, the number of members, and that each member
lands inside the work folder (no absolute paths, ``..`` parts, links or device files).
"""

from __future__ import annotations

import gzip
import logging
import stat
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from cmrclip.errors import DataError

__all__ = [
    "UnpackedUpload",
    "UnsafeArchiveError",
    "UnsupportedUploadError",
    "UploadError",
    "UploadLimits",
    "UploadTooLargeError",
    "save_stream",
    "sniff_kind",
    "unpack_upload",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_RATIO_FLOOR = 1 << 20  # members smaller than this may compress as well as they like
UploadKind = Literal["zip", "tar", "nifti", "nifti_gz", "dicom"]


class UploadError(DataError):
    """An uploaded study cannot be accepted; ``status_code`` is the HTTP status that answers it."""

    status_code = 400


class UploadTooLargeError(UploadError):
    """The upload, an archive's expansion, or its number of files exceeds a limit."""

    status_code = 413


class UnsafeArchiveError(UploadError):
    """An archive member would land outside the work folder, or is a link or device file."""

    status_code = 400


class UnsupportedUploadError(UploadError):
    """The upload is not a zip/tar of DICOM files, a NIfTI file or a DICOM file."""

    status_code = 422


@dataclass(frozen=True)
class UploadLimits:
    """Limits applied to every upload.

    Attributes:
        max_upload_bytes: largest accepted upload (the bytes sent).
        max_files: most members an archive may hold.
        max_expanded_bytes: largest total size once unpacked (declared sizes and bytes actually written).
        max_ratio: largest compression ratio accepted for one archive member (zip-bomb guard).
    """

    max_upload_bytes: int = 512 * 1024 * 1024
    max_files: int = 5000
    max_expanded_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: float = 200.0


@dataclass(frozen=True)
class UnpackedUpload:
    """What an upload became: a folder of DICOM files or a NIfTI file, inside the work folder."""

    kind: UploadKind
    path: Path
    n_files: int
    n_bytes: int


def _too_large(what: str, limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(f"{what} exceeds the limit of {limit:,} bytes; send a smaller study or raise the limit")


async def save_stream(chunks: AsyncIterator[bytes], target: Path, limits: UploadLimits) -> int:
    """Write an upload's byte stream to ``target``, stopping as soon as it passes ``limits.max_upload_bytes``.

    Returns:
        The number of bytes written.

    Raises:
        UploadTooLargeError: the stream is longer than the limit (the partial file is removed).
        UnsupportedUploadError: the stream is empty.
    """
    written = 0
    with target.open("wb") as handle:
        async for chunk in chunks:
            written += len(chunk)
            if written > limits.max_upload_bytes:
                handle.close()
                target.unlink(missing_ok=True)
                raise _too_large("the upload", limits.max_upload_bytes)
            handle.write(chunk)
    if written == 0:
        target.unlink(missing_ok=True)
        raise UnsupportedUploadError("the upload is empty; send a zip of DICOM files or a NIfTI file")
    return written


def sniff_kind(path: Path) -> UploadKind:
    """Tell an upload's kind from its first bytes (never from a client-supplied name).

    Raises:
        UnsupportedUploadError: the bytes are none of the accepted kinds.
    """
    with path.open("rb") as handle:
        head = handle.read(352)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "nifti_gz" if _gzip_is_nifti(path) else "tar"
    if head[128:132] == b"DICM":
        return "dicom"
    if len(head) >= 348 and (head[344:348] in (b"n+1\x00", b"n+2\x00") or head[4:8] == b"n+2\x00"):
        return "nifti"
    if head.startswith((b"\xfd7zXZ\x00", b"BZh")) or tarfile.is_tarfile(path):
        return "tar"
    raise UnsupportedUploadError(
        "the upload is not a zip or tar of DICOM files, a NIfTI (.nii/.nii.gz) or a DICOM file; check what was sent"
    )


def _gzip_is_nifti(path: Path) -> bool:
    try:
        with gzip.open(path, "rb") as handle:
            head = handle.read(548)
    except (OSError, EOFError):
        return False
    return head[344:348] in (b"n+1\x00", b"n+2\x00") or head[4:8] == b"n+2\x00"


def _safe_member_path(name: str, root: Path) -> Path:
    """Map an archive member name to a path inside ``root``, refusing anything that would escape it."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"archive member {name!r} has an invalid name")
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (posix.parts and ":" in posix.parts[0]):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path; archives must hold relative paths")
    if ".." in posix.parts:
        raise UnsafeArchiveError(f"archive member {name!r} points outside the archive ('..'); refusing it")
    target = (root / Path(*posix.parts)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"archive member {name!r} resolves outside the work folder; refusing it")
    return target


def _copy_limited(source: IO[bytes], target: Path, budget: int, declared: int, name: str) -> int:
    """Copy at most ``min(budget, declared)`` bytes, failing if the member turns out larger than declared."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise UploadTooLargeError(f"the archive expands beyond the limit; member {name!r} is too large")
            if written > declared:
                raise UnsafeArchiveError(
                    f"archive member {name!r} expands beyond its declared size; corrupt or hostile"
                )
            out.write(chunk)
    return written


def _check_declared(entries: Iterable[tuple[str, int, int]], limits: UploadLimits) -> None:
    """Check ``(name, size, compressed_size)`` of every member before anything is written."""
    total = 0
    for count, (name, size, compressed) in enumerate(entries, start=1):
        total += size
        if count > limits.max_files:
            raise UploadTooLargeError(f"the archive holds more than {limits.max_files:,} files; split the study")
        if total > limits.max_expanded_bytes:
            raise _too_large("the archive's declared expanded size", limits.max_expanded_bytes)
        if size > _RATIO_FLOOR and size / max(compressed, 1) > limits.max_ratio:
            raise UploadTooLargeError(
                f"archive member {name!r} compresses {size / max(compressed, 1):.0f}:1, above the "
                f"{limits.max_ratio:.0f}:1 limit (zip bomb?); refusing it"
            )


def _unzip(archive: Path, out: Path, limits: UploadLimits) -> tuple[int, int]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedUploadError(f"the zip archive cannot be read ({exc}); re-create it") from exc
    with zf:
        members = [info for info in zf.infolist() if not info.is_dir()]
        for info in zf.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a link or special file; refusing it")
            _safe_member_path(info.filename, out)
        _check_declared(((i.filename, i.file_size, i.compress_size) for i in members), limits)
        budget, count = limits.max_expanded_bytes, 0
        for info in members:
            target = _safe_member_path(info.filename, out)
            try:
                with zf.open(info) as source:
                    budget -= _copy_limited(source, target, budget, info.file_size, info.filename)
            except zipfile.BadZipFile as exc:
                raise UnsafeArchiveError(f"zip member {info.filename!r} does not match its header ({exc})") from exc
            except (OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise UnsupportedUploadError(f"zip member {info.filename!r} cannot be read ({exc})") from exc
            count += 1
    return count, limits.max_expanded_bytes - budget


def _untar(archive: Path, out: Path, limits: UploadLimits) -> tuple[int, int]:
    try:
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsupportedUploadError(f"the tar archive cannot be read ({exc}); re-create it") from exc
    budget, count = limits.max_expanded_bytes, 0
    with tf:
        try:
            for member in tf:
                budget -= _untar_member(tf, member, out, budget, limits)
                count += member.isfile()
                if count > limits.max_files:
                    raise UploadTooLargeError(f"the archive holds more than {limits.max_files:,} files; split it")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UnsupportedUploadError(f"the tar archive is corrupt ({exc}); re-create it") from exc
    return count, limits.max_expanded_bytes - budget


def _untar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, out: Path, budget: int, limits: UploadLimits) -> int:
    target = _safe_member_path(member.name, out)
    if member.isdir():
        return 0
    if not member.isfile():
        raise UnsafeArchiveError(f"archive member {member.name!r} is a link or special file; refusing it")
    if member.size > budget:
        raise _too_large("the archive's expanded size", limits.max_expanded_bytes)
    source = tf.extractfile(member)
    if source is None:
        raise UnsupportedUploadError(f"tar member {member.name!r} cannot be read")
    with source:
        return _copy_limited(source, target, budget, member.size, member.name)


def _gunzip(source: Path, target: Path, limits: UploadLimits) -> int:
    try:
        with gzip.open(source, "rb") as handle:
            return _copy_limited(handle, target, limits.max_expanded_bytes, limits.max_expanded_bytes + 1, "nifti")
    except UploadTooLargeError:
        raise
    except (OSError, EOFError, UnsafeArchiveError) as exc:
        raise UnsupportedUploadError(f"the gzip-compressed NIfTI cannot be read ({exc})") from exc


def unpack_upload(upload: Path, work: Path, limits: UploadLimits) -> UnpackedUpload:
    """Unpack a saved upload inside ``work``.

    Args:
        upload: the saved upload (a file inside ``work`` or anywhere readable).
        work: an empty folder that receives the unpacked files; the caller removes it.
        limits: the limits to enforce.

    Returns:
        A folder of files for archives and DICOM files, a ``.nii`` file for NIfTI uploads.

    Raises:
        UploadTooLargeError: too many members, too large an expansion, or too high a compression ratio (413).
        UnsafeArchiveError: a member escapes ``work`` or is a link/special file (400).
        UnsupportedUploadError: not an accepted kind, or corrupt (422).
    """
    kind = sniff_kind(upload)
    work.mkdir(parents=True, exist_ok=True)
    if kind == "nifti_gz":
        target = work / "study.nii"
        return UnpackedUpload(kind, target, 1, _gunzip(upload, target, limits))
    if kind == "nifti":
        if upload.stat().st_size > limits.max_expanded_bytes:
            raise _too_large("the NIfTI file", limits.max_expanded_bytes)
        return UnpackedUpload(kind, upload, 1, upload.stat().st_size)
    folder = work / "files"
    folder.mkdir(exist_ok=True)
    if kind == "dicom":
        target = folder / "image.dcm"
        target.write_bytes(upload.read_bytes())
        return UnpackedUpload(kind, folder, 1, target.stat().st_size)
    count, size = _unzip(upload, folder, limits) if kind == "zip" else _untar(upload, folder, limits)
    if count == 0:
        raise UnsupportedUploadError("the archive holds no files; send a zip of the study's DICOM files")
    logger.debug("unpacked %s upload: %d files, %d bytes", kind, count, size)
    return UnpackedUpload(kind, folder, count, size)
