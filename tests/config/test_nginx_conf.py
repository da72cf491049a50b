"""deploy/nginx/dienstweg.conf holds the request limits of config.serve: the upload limit
on exactly the URLs of the views that take files, the low limit everywhere else, and a
buffer as large as each limit (bodies in memory)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "dienstweg.conf"
UNITS = {"k": 1024, "m": 1024 * 1024}


def directives() -> str:
    """The file without its comments."""
    return "\n".join(line.split("#", 1)[0] for line in CONF.read_text().splitlines())


def size(value: str) -> int:
    return int(value[:-1]) * UNITS[value[-1]]


def upload_views(patterns: Any = None) -> Iterator[URLPattern]:
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from upload_views(pattern.url_patterns)
        elif getattr(pattern.callback, "accepts_uploads", False):
            yield pattern


def test_the_limits_are_the_servers() -> None:
    text = directives()
    server_level = text.partition("location ")[0]
    assert size(re.findall(r"client_max_body_size (\w+);", server_level)[0]) == (
        settings.FORM_REQUEST_MAX_BYTES
    )
    assert size(re.findall(r"client_body_buffer_size (\w+);", server_level)[0]) == (
        settings.FORM_REQUEST_MAX_BYTES
    )
    uploads = re.search(r"location ~ (\S+) \{([^}]*)\}", text)
    assert uploads
    assert re.findall(r"client_max_body_size (\w+);", uploads.group(2)) == ["51m"]
    assert re.findall(r"client_body_buffer_size (\w+);", uploads.group(2)) == ["51m"]
    assert size("51m") == settings.UPLOAD_REQUEST_MAX_BYTES
    assert "proxy_request_buffering off" not in text  # bodies whole, in the buffer


def test_the_upload_location_matches_exactly_the_views_that_take_files() -> None:
    match = re.search(r"location ~ (\S+) \{", directives())
    assert match
    location = re.compile(match.group(1))
    views = list(upload_views())
    assert {view.name for view in views} == {"consent_new", "referral_new", "thread_post"}
    for view in views:
        kwargs = {name: uuid.uuid4() for name in view.pattern.regex.groupindex}
        assert location.match(reverse(view.name, kwargs=kwargs)), view.name
    for name in ("login", "family_register", "home"):
        assert not location.match(reverse(name))
