"""The browser fixture: a missing Chromium skips the browser tests, or fails them where CI requires a browser."""

from __future__ import annotations

import pytest

from cmrclip import conftest


@pytest.fixture
def no_browser(monkeypatch, tmp_path):
    monkeypatch.setenv("CMRCLIP_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setattr(conftest, "_browser_skips", [])


def test_missing_browser_skips_with_the_install_line(no_browser, monkeypatch):
    monkeypatch.delenv(conftest.REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        conftest.chromium_options()
    assert len(conftest._browser_skips) == 1


def test_missing_browser_fails_where_required(no_browser, monkeypatch):
    monkeypatch.setenv(conftest.REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match="CMRCLIP_REQUIRE_BROWSER"):
        conftest.chromium_options()


def test_a_given_browser_is_used(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("")
    monkeypatch.setenv("CMRCLIP_CHROMIUM", str(fake))
    assert conftest.chromium_options()["executable_path"] == str(fake)
