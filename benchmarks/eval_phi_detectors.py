"""Compare third-party PHI detectors with ours on the report sets (issue 16): alone and added after our rules.

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_phi_detectors.py [--site-packages DIR]

``--site-packages`` appends a folder holding packages that are not project dependencies (a scratch venv with
``presidio-analyzer``, ``scrubadub``, ``philter-lite``), after our own site-packages so that our pins win.
Detectors: presidio-analyzer's pattern recognisers without any spaCy model (phone, date, e-mail, URL, NHS number,
UK postcode, IP), scrubadub's default scrubber, phonenumbers' matcher over several regions, and philter-lite
(which needs NLTK tagger data that no trusted package ships; reported as unavailable when it fails).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cmrclip.text.deid import deidentify  # noqa: E402
from cmrclip.text.scoring import load_gold, score_deid  # noqa: E402

Spans = Callable[[str], list[tuple[int, int]]]
REGIONS = ("GB", "US", "AU", "DE", "NL", "IE", "FR", "NZ")


def presidio() -> Spans:
    from presidio_analyzer.predefined_recognizers import (
        DateRecognizer,
        EmailRecognizer,
        IpRecognizer,
        NhsRecognizer,
        PhoneRecognizer,
        UkPostcodeRecognizer,
        UrlRecognizer,
    )

    recognizers = [PhoneRecognizer(supported_regions=REGIONS), DateRecognizer(), EmailRecognizer(), UrlRecognizer(),
                   NhsRecognizer(), UkPostcodeRecognizer(), IpRecognizer()]  # fmt: skip

    def spans(text: str) -> list[tuple[int, int]]:
        return [(r.start, r.end) for rec in recognizers for r in rec.analyze(text, rec.supported_entities, None)]

    return spans


def phonenumbers_matcher() -> Spans:
    import phonenumbers

    def spans(text: str) -> list[tuple[int, int]]:
        out = []
        for region in REGIONS:
            out += [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]
        return out

    return spans


def scrubadub_cleaner() -> Callable[[str], str]:
    import scrubadub

    scrubber = scrubadub.Scrubber(locale="en_GB")
    return scrubber.clean


def philter() -> Callable[[str], str]:
    import philter_lite

    config = next((Path(philter_lite.__file__).parent / "configs").glob("*.toml"))
    filters = philter_lite.load_filters(str(config))

    def clean(text: str) -> str:
        include, _, _ = philter_lite.detect_phi(text, patterns=filters)
        return philter_lite.transform_text_asterisk(text, include)

    return clean


def tagger(spans: Spans) -> Callable[[str], str]:
    def run(text: str) -> str:
        for start, end in sorted(set(spans(text)), reverse=True):
            text = text[:start] + "[PHI]" + text[end:]
        return text

    return run


def measure(name: str, fn: Callable[[str], str], rows: list[dict]) -> None:
    texts = [r["text"] for r in rows]
    t = time.process_time()
    score = score_deid(rows, fn)
    rate = len(texts) / (time.process_time() - t)
    print(f"{name:34s} {score.line()}  [{rate:.0f} reports/s CPU incl. scoring]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site-packages", type=Path)
    args = parser.parse_args()
    if args.site_packages:
        sys.path.append(str(args.site_packages))
    rows = load_gold("reports_frozen.jsonl")
    print("loadavg:", Path("/proc/loadavg").read_text().strip())

    def ours(text: str) -> str:
        return deidentify(text).text

    measure("ours", ours, rows)
    builders = {"presidio patterns": lambda: tagger(presidio()), "phonenumbers": lambda: tagger(phonenumbers_matcher()),
                "scrubadub": scrubadub_cleaner, "philter-lite": philter}  # fmt: skip
    for name, build in builders.items():
        try:
            fn = build()
            fn("Seen on 12/03/2021, tel 0113 496 0721.")
        except Exception as exc:  # noqa: BLE001 - report any failure of a third-party detector and go on
            print(f"{name:34s} unavailable: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:100]}")
            continue
        measure(f"{name} alone", fn, rows)
        measure(f"ours + {name}", lambda text, fn=fn: fn(ours(text)), rows)
    print("loadavg:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
