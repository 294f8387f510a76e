import io
import logging
import zipfile

import pytest
from fastapi.testclient import TestClient

from cmrclip.serve.api import create_app
from cmrclip.serve.uploads import UploadLimits

LIMITS = UploadLimits(max_upload_bytes=200_000, max_files=20, max_expanded_bytes=2_000_000, max_ratio=50)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def work_root(tmp_path):
    return tmp_path / "requests"


@pytest.fixture
def client(work_root):
    app = create_app(token=None, limits=LIMITS, work_root=work_root)
    with TestClient(app) as c:
        yield c


def _post(client, body, headers=None, **kw):
    return client.post("/v1/predict", content=body, headers=headers or {}, **kw)


def _assert_clean(client, work_root):
    assert client.get("/health").json()["status"] == "ok"
    assert not any(work_root.iterdir()), f"left behind: {list(work_root.rglob('*'))}"


def test_health_docs_and_viewer(client):
    assert client.get("/health").json() == {"status": "ok", "version": "0.1.0", "model_loaded": False}
    spec = client.get("/openapi.json").json()
    assert "/v1/predict" in spec["paths"]
    assert "application/zip" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "cmrclip API" in client.get("/docs").text
    page = client.get("/")
    assert page.status_code == 200
    assert "upload-form" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert client.get("/static/viewer.js").status_code == 200
    assert client.get("/static/../api.py").status_code == 404


def test_oversize_upload_by_header_and_by_stream(client, work_root):
    response = _post(client, b"x" * 300_000)
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["error"]["message"]

    def chunks():
        for _ in range(30):
            yield b"PK\x03\x04" + b"y" * 10_000

    response = _post(client, chunks())  # chunked: no Content-Length, counted while streaming
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    _assert_clean(client, work_root)


def test_zip_bomb_is_413(client, work_root):
    body = _zip_bytes({"a.dcm": b"\x00" * 3_000_000})
    assert len(body) < LIMITS.max_upload_bytes
    response = _post(client, body)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    _assert_clean(client, work_root)


def test_zip_slip_is_400_and_writes_nothing_outside(client, work_root, tmp_path):
    for name in ("../../escaped.dcm", "/tmp/escaped-cmrclip.dcm"):
        response = _post(client, _zip_bytes({"ok.dcm": b"x", name: b"evil"}))
        assert response.status_code == 400, response.text
        assert "refusing" in response.json()["error"]["message"] or "absolute" in response.json()["error"]["message"]
    assert not list(tmp_path.rglob("escaped*"))
    _assert_clean(client, work_root)


def test_junk_is_422(client, work_root):
    response = _post(client, b"\x89PNG not a study" * 50)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_upload"
    _assert_clean(client, work_root)


def test_valid_upload_without_model_is_503(client, work_root):
    response = _post(client, _zip_bytes({"a.dcm": b"\x00" * 128 + b"DICM"}))
    assert response.status_code == 503
    assert "--model" in response.json()["error"]["message"]
    _assert_clean(client, work_root)


def test_bearer_token_required(work_root):
    app = create_app(token="s3cret", limits=LIMITS, work_root=work_root)  # noqa: S106
    with TestClient(app) as client:
        body = _zip_bytes({"a.dcm": b"x"})
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = _post(client, body, headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["error"]["message"]
        response = _post(client, body, {"Authorization": "Bearer s3cret"})
        assert response.status_code == 503  # past the token check; no model loaded
        assert client.get("/health").status_code == 200
        _assert_clean(client, work_root)


def test_nothing_about_the_upload_is_logged(client, work_root, caplog):
    caplog.set_level(logging.DEBUG, logger="cmrclip")
    _post(client, _zip_bytes({"DOE^JOHN_1234567/a.dcm": b"x", "../DOE^JOHN.dcm": b"y"}))
    _post(client, _zip_bytes({"DOE^JOHN_1234567/a.dcm": b"\x00" * 128 + b"DICM"}))
    assert caplog.records
    assert "DOE" not in caplog.text


@pytest.fixture
def loaded(tiny_model):
    return tiny_model


@pytest.mark.slow
def test_predict_a_dicom_zip_with_overlays(loaded, phantom_zip, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    work_root = tmp_path / "requests"
    limits = UploadLimits(max_upload_bytes=5_000_000, max_files=500, max_expanded_bytes=50_000_000)
    with TestClient(create_app(model=loaded, limits=limits, work_root=work_root)) as client:
        assert client.get("/health").json()["model_loaded"] is True
        response = _post(client, phantom_zip, params={"explain": "true", "name": "ward 3/study 7.zip"})
        assert response.status_code == 200, response.text
        body = response.json()
        pred = body["prediction"]
        assert body["input"] == pred["input"] == "ward 3/study 7.zip"  # the upload's name, echoed beside the key
        assert pred["views"] == ["SAX", "4CH"]
        assert len(pred["conditions"]) == 39
        assert pred["lvef"]["lower"] < pred["lvef"]["value"] < pred["lvef"]["upper"]
        assert len(body["clips"]) == pred["n_clips"] == 3  # 4CH + SAX slices 1 and 3 of 6
        assert all(c["rollout_gif"].startswith("data:image/gif;base64,") for c in body["clips"])
        # junk inside a well-formed zip: answered 422, and the server keeps serving
        response = _post(client, _zip_bytes({"notes.txt": b"not an image", "scan.dcm": b"garbage" * 100}))
        assert response.status_code == 422
        assert "no usable cine" in response.json()["error"]["message"]
        _assert_clean(client, work_root)
    assert "PHANTOM" not in caplog.text and "ACC0001" not in caplog.text


@pytest.mark.slow
def test_predict_a_real_nifti_cine(loaded, shared_data, tmp_path):
    body = (shared_data / "mnms2_subject001" / "001_LA_CINE.nii.gz").read_bytes()
    work_root = tmp_path / "requests"
    with TestClient(create_app(model=loaded, work_root=work_root)) as client:
        response = _post(client, body, params={"view": "4CH"})
        assert response.status_code == 200, response.text
        pred = response.json()["prediction"]
        assert pred["input"] is None  # no name given
        assert pred["views"] == ["4CH"]
        assert pred["n_clips"] == 1
        assert pred["warnings"][0].startswith("missing views: SAX, 2CH, 3CH")
        assert _post(client, body, params={"view": "2CH"}).status_code == 422  # only SAX or 4CH for NIfTI
        _assert_clean(client, work_root)


def test_junk_zip_with_a_model_loaded_is_422_and_the_server_keeps_serving(loaded, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="cmrclip")
    work_root = tmp_path / "requests"
    junk = {
        "DOE^JANE/notes.txt": b"not an image",
        "DOE^JANE/scan.dcm": b"garbage" * 100,
        "DOE^JANE/fake.dcm": b"\x00" * 128 + b"DICM" + bytes(range(256)) * 8,  # preamble, then no valid elements
        "DOE^JANE/photo.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
    }
    with TestClient(create_app(model=loaded, limits=LIMITS, work_root=work_root)) as client:
        assert client.get("/health").json()["model_loaded"] is True
        response = _post(client, _zip_bytes(junk))
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "unusable_study"
        assert "no usable cine" in error["message"] and "give the DICOM files of a cine CMR study" in error["message"]
        assert "DOE" not in response.text  # the message names no file of the upload
        _assert_clean(client, work_root)
        response = _post(client, b"PK\x03\x04" + b"\x00" * 200)  # a truncated zip
        assert response.status_code == 422, response.text
        assert "zip archive cannot be read" in response.json()["error"]["message"]
        _assert_clean(client, work_root)
    assert "DOE" not in caplog.text
