"""Credentials inside server URLs never reach a file or a log line."""

from __future__ import annotations

import json
import logging

import pytest

from sovtp.redact import RedactingFilter, redact, redact_text, redact_url


@pytest.mark.parametrize(
    "url,want",
    [
        ("http://alice:s3cret@gpu1:8000/v1", "http://***@gpu1:8000/v1"),
        ("https://tok@host/v1", "https://***@host/v1"),
        ("https://host/v1?api_key=sk-123&model=qwen", "https://host/v1?api_key=***&model=qwen"),
        (
            "https://host/v1?model=q&Access_Token=abc#x",
            "https://host/v1?model=q&Access_Token=***#x",
        ),
        (
            "https://u:p@h/v1?key=k&apikey=a&token=t",
            "https://***@h/v1?key=***&apikey=***&token=***",
        ),
        ("https://h/v1?password=p&secret=s&b=%2F", "https://h/v1?password=***&secret=***&b=%2F"),
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),  # nothing to hide, unchanged
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url, want):
    assert redact_url(url) == want


def test_redact_walks_what_goes_to_json_and_yaml():
    cfg = {
        "systems": [
            {
                "name": "openai:q",
                "options": {
                    "base_url": ["http://bob:pw1@gpu1:8000/v1", "http://gpu2:8000/v1?api_key=K2"],
                    "api_key": "sk-live",
                    "concurrency": 16,
                },
            }
        ],
        "note": ("see http://carol:pw3@h/x", 3),
        "key": "sample|1|facs|v",  # a run row's key is not a secret
    }
    out = json.dumps(redact(cfg))
    for secret in ("pw1", "K2", "sk-live", "pw3", "bob", "carol"):
        assert secret not in out
    got = redact(cfg)
    assert got["systems"][0]["options"]["concurrency"] == 16
    assert got["systems"][0]["options"]["base_url"][1] == "http://gpu2:8000/v1?api_key=***"
    assert got["key"] == "sample|1|facs|v" and got["note"][1] == 3
    assert cfg["systems"][0]["options"]["api_key"] == "sk-live"  # the input is not modified


def test_redact_text_finds_urls_in_messages():
    msg = "cannot list models at http://u:hunter2@gpu:8000/v1/models: 401 (http://x/y?token=abc)"
    assert redact_text(msg) == (
        "cannot list models at http://***@gpu:8000/v1/models: 401 (http://x/y?token=***)"
    )


def test_logging_filter_redacts_message_args_and_tracebacks(caplog):
    log = logging.getLogger("sovtp.test_redact")
    flt = RedactingFilter()
    caplog.handler.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, logger="sovtp.test_redact"):
            log.info("asking %s with %d retries", "http://u:pw9@gpu:8000/v1", 3)
            log.warning("plain %s", "http://gpu:8000/v1?api_key=zz9")
            try:
                raise ConnectionError("refused by https://me:pw8@gpu/v1")
            except ConnectionError:
                log.exception("failed")
    finally:
        caplog.handler.removeFilter(flt)
    text = caplog.text
    assert "pw9" not in text and "zz9" not in text and "pw8" not in text
    assert "asking http://***@gpu:8000/v1 with 3 retries" in text
    assert "https://***@gpu/v1" in text  # inside the traceback
    assert caplog.records[0].getMessage() == "asking http://***@gpu:8000/v1 with 3 retries"
