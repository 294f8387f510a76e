"""The web service: ``GET /health``, ``POST /v1/predict`` (a zip of DICOM files or a NIfTI) and the viewer page.

Every request is processed in its own temporary folder, which is removed whatever happens. Nothing about a patient
is logged: only the request's status, size and duration. Uploads are bounded (:class:`UploadLimits`); archives are
unpacked safely (:mod:`cmrclip.serve.uploads`); an optional bearer token protects the prediction endpoint.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from cmrclip import __version__
from cmrclip.errors import CmrclipError, DataError
from cmrclip.serve.uploads import UploadError, UploadLimits, UploadTooLargeError, save_stream, unpack_upload

if TYPE_CHECKING:
    from cmrclip.serve.predict import Model

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

NiftiView = Literal["SAX", "4CH"]

_STATIC = resources.files("cmrclip.serve").joinpath("static")
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The study as raw bytes: a zip (or tar) of its DICOM files, a NIfTI (.nii/.nii.gz) file.",
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise UploadError("the Content-Length header is not a number") from exc


class _Service:
    """The state behind the routes: the model, the limits, and a semaphore bounding concurrent inference."""

    def __init__(self, model: Model | None, limits: UploadLimits, work_root: Path | None, max_concurrent: int) -> None:
        self.model = model
        self.limits = limits
        self.work_root = work_root
        self.slots = asyncio.Semaphore(max_concurrent)

    async def predict(self, request: Request, explain: bool, view: NiftiView, name: str | None) -> dict[str, Any]:
        declared = _declared_length(request)
        if declared is not None and declared > self.limits.max_upload_bytes:
            raise UploadTooLargeError(
                f"the upload ({declared:,} bytes) exceeds the limit of {self.limits.max_upload_bytes:,} bytes"
            )
        if self.work_root is not None:
            self.work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="cmrclip-req-", dir=self.work_root))
        try:
            upload = work / "upload.bin"
            await save_stream(request.stream(), upload, self.limits)
            async with self.slots:
                return await run_in_threadpool(self._process, upload, work, explain, view, name)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _process(self, upload: Path, work: Path, explain: bool, view: NiftiView, name: str | None) -> dict[str, Any]:
        unpacked = unpack_upload(upload, work / "unpacked", self.limits)
        source = unpacked.path
        if unpacked.kind in ("nifti", "nifti_gz"):  # ingestion reads a NIfTI's view from its file name
            source = work / "nifti" / f"upload_{'sa' if view == 'SAX' else 'la'}.nii"
            source.parent.mkdir()
            unpacked.path.replace(source)
        upload.unlink(missing_ok=True)
        if self.model is None:
            raise _NoModelError("no model is loaded; start the service with --model OUT/model.pt")
        study = self.model.load_study(source, work_dir=work)
        prediction = replace(self.model.predict(study), input=name)
        body: dict[str, Any] = {"input": name, "prediction": prediction.to_dict()}
        if explain:
            from cmrclip.serve.explain import explain_study

            body["clips"] = [clip.to_dict(with_gif=True) for clip in explain_study(self.model, study)]
            if study.segmentation is not None:
                from cmrclip.serve.volumes import slice_overlays

                body["contours"] = slice_overlays(study.segmentation)
        return body


class _NoModelError(CmrclipError):
    """The service was started without a model."""


def _answer(exc: CmrclipError) -> JSONResponse:
    match exc:
        case UploadError():
            code = {413: "upload_too_large", 422: "unsupported_upload"}.get(exc.status_code, "bad_upload")
            return _error(exc.status_code, code, str(exc))
        case _NoModelError():
            return _error(503, "no_model", str(exc))
        case DataError():
            return _error(422, "unusable_study", str(exc))
        case _:
            return _error(500, "failed", str(exc))


def _add_routes(app: FastAPI, service: _Service, token: str | None) -> None:
    @app.get("/health", summary="Liveness and whether a model is loaded.")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model_loaded": service.model is not None}

    @app.post("/v1/predict", summary="Predict LVEF and the conditions for one study.", openapi_extra=_UPLOAD_BODY)
    async def predict(
        request: Request,
        explain: Annotated[
            bool, Query(description="Also return each clip's cine with its attention overlay (and the contours).")
        ] = False,
        view: Annotated[NiftiView, Query(description="View of an uploaded NIfTI cine (NIfTI does not say).")] = "SAX",
        name: Annotated[
            str | None, Query(max_length=500, description="The upload's name (e.g. its file name), echoed as 'input'.")
        ] = None,
    ) -> JSONResponse:
        started = time.perf_counter()
        if not _authorised(request, token):
            response = _error(401, "unauthorised", "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
        else:
            try:
                response = JSONResponse(await service.predict(request, explain, view, name))
            except CmrclipError as exc:
                response = _answer(exc)
            except Exception as exc:  # noqa: BLE001 - one request is the unit; the server keeps serving
                logger.error("request failed with %s", type(exc).__name__)
                response = _error(500, "internal_error", "the study could not be processed (internal error)")
        logger.info("POST /v1/predict -> %d in %.2f s", response.status_code, time.perf_counter() - started)
        return response

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(_STATIC.joinpath("index.html")), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Any:
        if name not in {"viewer.js", "viewer.css", "docs.html"}:
            return _error(404, "not_found", f"no static file {name!r}")
        return FileResponse(str(_STATIC.joinpath(name)))


def create_app(
    model_path: Path | None = None,
    *,
    model: Model | None = None,
    token: str | None = None,
    limits: UploadLimits | None = None,
    work_root: Path | None = None,
    max_concurrent: int = 1,
    segmenter_path: Path | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        model_path: a study-model bundle (``OUT/model.pt``) to load; or pass an already loaded ``model``.
        model: a loaded :class:`~cmrclip.serve.predict.Model` (wins over ``model_path``).
        token: if set, ``POST /v1/predict`` requires ``Authorization: Bearer <token>``.
        limits: upload limits (sizes, number of files, archive expansion).
        work_root: where per-request temporary folders are made (the system's temporary folder by default).
        max_concurrent: studies processed at the same time (bounds memory); others wait.
        segmenter_path: a segmentation model loaded with ``model_path``: predictions then show the volumetric LVEF,
            the volumes and, with ``explain``, the contours of every SAX slice.

    Returns:
        The app; run it with uvicorn. OpenAPI schema at ``/openapi.json``, a local docs page at ``/docs``.
    """
    if model is None and model_path is not None:
        from cmrclip.serve.predict import load_model

        model = load_model(model_path, segmenter=segmenter_path)
    service = _Service(model, limits or UploadLimits(), work_root, max_concurrent)
    app = FastAPI(
        title="cmrclip",
        version=__version__,
        description="LVEF and 39 conditions from cine cardiac MRI.",
        docs_url=None,
        redoc_url=None,
    )
    _add_routes(app, service, token)

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(str(_STATIC.joinpath("docs.html")), media_type="text/html")

    return app
