"""Bounded load test of the web service (loopback only): N concurrent clients post a study for a fixed time.

Starts `cmrclip serve` as a child process on 127.0.0.1 with a tiny randomly initialised bundle (or --model), posts
one synthetic study's DICOM zip from N client threads until the time is up, samples the server's RSS every
second, then stops the server. Prints one JSON line: requests, errors, latency percentiles, throughput and memory.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_serve.py --clients 4 --seconds 60
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _tiny_bundle(folder: Path) -> Path:
    from cmrclip.conditions import condition_keys
    from cmrclip.models.bundle import save_bundle
    from cmrclip.models.heads import HeadConfig, StudyModel
    from cmrclip.models.registry import build_video_encoder

    encoder = build_video_encoder("tiny", seed=0)
    model = StudyModel(encoder, encoder.video_proj, encoder.out_dim, HeadConfig(), condition_keys(), ["lvef"])
    rng = np.random.default_rng(0)
    cal = {"lvef_pred": rng.normal(55, 10, 40).tolist(), "lvef_true": rng.normal(55, 10, 40).tolist()}
    return save_bundle(folder / "model.pt", model, cal)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _client(url: str, body: bytes, stop: float, out: list[tuple[float, int]], lock: threading.Lock) -> None:
    with httpx.Client(timeout=300) as client:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                status = client.post(url, content=body, params={"explain": "true"}).status_code
            except httpx.HTTPError:
                status = -1
            with lock:
                out.append((time.perf_counter() - t0, status))


def _wait_ready(base: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    sys.exit("server did not start")


def _synthetic_study_zip(folder: Path) -> bytes:
    """One study of the synthetic cohort (``cmrclip synth``), its DICOM files zipped as a user would upload them."""
    from cmrclip.synth.cohort import generate_cohort

    generate_cohort(folder / "synth", n_studies=1, seed=0, repeat_fraction=0.0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((folder / "synth" / "dicom").rglob("*.dcm")):
            zf.write(path, path.relative_to(folder / "synth" / "dicom"))
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        body = _synthetic_study_zip(Path(tmp))
        model = args.model or _tiny_bundle(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE", "TMPDIR": tmp}
        cmd = [
            str(REPO / ".venv/bin/cmrclip"),
            "serve",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=(Path(tmp) / "server.log").open("w"))
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, time.monotonic() + 120)
            rss = [_rss_mb(proc.pid)]
            results: list[tuple[float, int]] = []
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds
            threads = [
                threading.Thread(target=_client, args=(base + "/v1/predict", body, stop, results, lock))
                for _ in range(args.clients)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                time.sleep(1.0)
                rss.append(_rss_mb(proc.pid))
            wall = time.perf_counter() - started
            healthy = httpx.get(base + "/health", timeout=5).status_code == 200
            left = [p.name for p in Path(tmp).iterdir() if p.name.startswith("cmrclip-")]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lat = np.array([r[0] for r in results])
    errors = sum(1 for r in results if r[1] != 200)
    n_rss = len(rss)
    report = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(results),
        "errors": errors,
        "throughput_per_min": round(60 * len(results) / wall, 2),
        "latency_s_p50": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "latency_s_p95": round(float(np.percentile(lat, 95)), 2) if len(lat) else None,
        "rss_mb_start": round(rss[0], 1),
        "rss_mb_first_half_max": round(max(rss[: max(1, n_rss // 2)]), 1),
        "rss_mb_second_half_max": round(max(rss[n_rss // 2 :]), 1),
        "rss_mb_end": round(rss[-1], 1),
        "healthy_after": healthy,
        "temp_dirs_left": left,
        "upload_bytes": len(body),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
