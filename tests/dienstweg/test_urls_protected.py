"""Every URL of the project, the admin's included, is closed until the second factor.

The test walks the whole URL tree, so a page added later without protection fails here.
Only the views in BEFORE_SECOND_FACTOR may answer before it, and for each we state what
it may show."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.converters import (
    IntConverter,
    PathConverter,
    SlugConverter,
    StringConverter,
    UUIDConverter,
)
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize

from dienstweg import actions
from dienstweg.models import User
from tests.conftest import YILMAZ, Network, enrol

# The only views reachable without a verified second factor. Adding a name here is a
# security decision: the page must show nothing but what it needs before the second factor.
BEFORE_SECOND_FACTOR = {
    "login",
    "logout",
    "enrol",
    "enrolment_link",
    "verify",
    "set_language",
    "health",
}
# Static files are reachable too, but they never reach the URL resolver: the ASGI app
# serves them in front of Django (config/asgi.py); see test_static_files_are_public.

ANONYMOUS, NO_DEVICE, UNVERIFIED_DEVICE = "anonymous", "no-device", "device-not-verified"
# Where the gate sends each visitor of a protected page.
GATE_TARGET = {ANONYMOUS: "login", NO_DEVICE: "enrol", UNVERIFIED_DEVICE: "verify"}
NAV_MARKER = 'aria-label="Hauptnavigation"'


@dataclass(frozen=True)
class Route:
    """One URL pattern with everything needed to build a concrete URL for it."""

    name: str  # namespaced name, or the route text for unnamed patterns
    url_name: str | None
    chain: tuple[URLResolver | URLPattern, ...]

    @property
    def callback(self) -> Callable[..., Any]:
        return self.chain[-1].callback  # type: ignore[union-attr]


def walk(
    resolver: URLResolver, chain: tuple[URLResolver, ...] = (), namespace: str = ""
) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry, (*chain, entry), inner)
        else:
            text = "".join(str(part.pattern) for part in (*chain, entry))
            name = f"{namespace}{entry.name}" if entry.name else f"<unnamed {text!r}>"
            yield Route(name=name, url_name=entry.name, chain=(*chain, entry))


ROUTES = list(walk(get_resolver()))


class CannotBuild(Exception):
    pass


def converter_value(converter: Any, ids: dict[str, str]) -> str:
    if isinstance(converter, IntConverter):
        return ids["int"]
    if isinstance(converter, PathConverter):
        return ids["path"]
    if isinstance(converter, StringConverter | SlugConverter):
        return ids["str"]
    if isinstance(converter, UUIDConverter):
        return ids["uuid"]
    raise CannotBuild(f"no sample value for converter {type(converter).__name__}")


ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>")
# Values tried for a regex group; the first one that resolves back to the pattern wins.
REGEX_CANDIDATES = ("dienstweg", "1", "x")


def build_part(part: Any, ids: dict[str, str]) -> list[str]:
    """Candidate texts for one pattern of the chain."""
    if isinstance(part, RoutePattern):
        route = str(part)

        def fill(match: re.Match[str]) -> str:
            return converter_value(part.converters[match["parameter"]], ids)

        return [ROUTE_PARAMETER.sub(fill, route)]
    if isinstance(part, RegexPattern):
        text, parameters = normalize(part.regex.pattern)[0]
        candidates = []
        for value in REGEX_CANDIDATES:
            candidate = text % {parameter: value for parameter in parameters}
            if part.regex.search(candidate):
                candidates.append(candidate)
        return candidates
    raise CannotBuild(f"unknown pattern type {type(part).__name__}")


def build_url(route: Route, ids: dict[str, str]) -> str:
    """A concrete URL that resolves to the route's own view, or CannotBuild."""
    urls = [""]
    for part in route.chain:
        urls = [url + text for url in urls for text in build_part(part.pattern, ids)]
    for url in urls:
        path = "/" + url
        try:
            match = resolve(path)
        except Exception:  # noqa: S112 (try the next candidate)
            continue
        if match.func is route.callback:
            return path
    raise CannotBuild(f"cannot build a URL for {route.name} (tried {urls})")


def sample_ids(network: Network) -> dict[str, str]:
    # Ids of rows that exist, so that an unprotected view would show content, not a 404.
    family = actions.register_family(
        owner=network.project, members=YILMAZ, address="-", phone="", notes="", by=network.anna
    )
    return {
        "int": str(network.project.pk),
        "path": str(network.anna.pk),
        "str": "dienstweg",
        "uuid": str(family.pk),
    }


def client_for(persona: str, network: Network, user_without_device: User) -> Client:
    client = Client()
    if persona == NO_DEVICE:
        client.force_login(user_without_device)
    elif persona == UNVERIFIED_DEVICE:
        client.force_login(network.ben)  # has a confirmed device, session not verified
    return client


def request(client: Client, method: str, url: str) -> HttpResponse:
    return client.get(url) if method == "GET" else client.post(url)


def gated(response: HttpResponse, persona: str) -> str | None:
    """None if the response shows nothing (redirect to the gate, 403 or 405), else why not."""
    if response.status_code in {403, 405}:
        return None
    if response.status_code != 302:
        return f"status {response.status_code}"
    target = reverse(GATE_TARGET[persona])
    location = response["Location"]
    if not location.startswith(f"{target}?next="):
        return f"redirect to {location}, expected {target}?next=…"
    if response.content:
        return "redirect with a body"
    return None


def page(response: HttpResponse) -> str:
    return response.content.decode()


# What each view in BEFORE_SECOND_FACTOR may show, by persona and method.


def expect_login(response: HttpResponse, persona: str, method: str) -> None:
    # The login form and nothing else: no navigation, no link into the platform.
    assert response.status_code == 200
    html = page(response)
    assert 'name="username"' in html
    assert 'type="password"' in html
    assert NAV_MARKER not in html
    for protected in ("directory", "account"):
        assert f'href="{reverse(protected)}"' not in html
    assert "/admin/" not in html


def expect_logout(response: HttpResponse, persona: str, method: str) -> None:
    if method == "GET":
        assert response.status_code == 405  # logging out is a POST (CSRF-protected)
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "cookies" in response["Clear-Site-Data"]
    assert not response.content


def expect_enrol(response: HttpResponse, persona: str, method: str) -> None:
    if persona == UNVERIFIED_DEVICE:
        # Enrolled already: a second device must not be added before verifying the first.
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("verify"))
    else:
        # Only the hint to use the enrolment link: nothing is set up after a password login.
        assert response.status_code == 200
        html = page(response)
        assert "Zugang noch nicht eingerichtet" in html
        assert "<svg" not in html
        assert 'name="token"' not in html
        assert NAV_MARKER not in html


def expect_enrolment_link(response: HttpResponse, persona: str, method: str) -> None:
    # An unknown token: the one answer for unknown, used and expired links.
    assert response.status_code == 404
    html = page(response)
    assert "Dieser Link gilt nicht (mehr)." in html
    assert 'name="token"' not in html
    assert NAV_MARKER not in html


def expect_verify(response: HttpResponse, persona: str, method: str) -> None:
    if persona == ANONYMOUS:
        assert response.status_code == 302
        assert response["Location"] == reverse("login")
    elif persona == NO_DEVICE:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("enrol"))
    else:
        assert response.status_code == 200
        html = page(response)
        assert 'name="token"' in html
        assert NAV_MARKER not in html


def expect_set_language(response: HttpResponse, persona: str, method: str) -> None:
    # Only a redirect back to a page of ours; the page itself is gated again.
    assert response.status_code == 302
    assert response["Location"].startswith("/")
    assert not response["Location"].startswith("//")
    assert not response.content


def expect_health(response: HttpResponse, persona: str, method: str) -> None:
    if method == "POST":
        assert response.status_code == 405
        return
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "ok"}


EXPECTATIONS: dict[str, Callable[[HttpResponse, str, str], None]] = {
    "login": expect_login,
    "logout": expect_logout,
    "enrol": expect_enrol,
    "enrolment_link": expect_enrolment_link,
    "verify": expect_verify,
    "set_language": expect_set_language,
    "health": expect_health,
}


@pytest.fixture
def user_without_device(network: Network) -> User:
    return network.anna  # never enrolled


@pytest.fixture
def ben_has_device(network: Network) -> None:
    enrol(network.ben)


def test_every_url_pattern_can_be_built(network: Network) -> None:
    ids = sample_ids(network)
    failures = []
    for route in ROUTES:
        try:
            build_url(route, ids)
        except CannotBuild as error:
            failures.append(str(error))
    assert not failures, "\n".join(failures)


def test_walk_finds_the_project_and_admin_pages() -> None:
    names = {route.name for route in ROUTES}
    assert {"home", "directory", "agency_detail", "account", "health"} <= names
    assert any(name.endswith(":index") for name in names)  # the admin site
    assert any(name.endswith("_user_change") for name in names)


def test_allow_list_names_only_existing_urls() -> None:
    names = {route.name for route in ROUTES}
    assert names >= BEFORE_SECOND_FACTOR


def test_views_marked_before_second_factor_are_exactly_the_allow_list() -> None:
    marked = {route.name for route in ROUTES if getattr(route.callback, "before_second_factor", 0)}
    assert marked == BEFORE_SECOND_FACTOR


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("persona", [ANONYMOUS, NO_DEVICE, UNVERIFIED_DEVICE])
@pytest.mark.usefixtures("ben_has_device")
def test_no_url_shows_content_before_the_second_factor(
    network: Network, user_without_device: User, persona: str, method: str
) -> None:
    ids = sample_ids(network)
    failures = []
    checked_allowed = set()
    for route in ROUTES:
        url = build_url(route, ids)
        # A fresh login per request: a POST to logout must not change the next request.
        response = request(client_for(persona, network, user_without_device), method, url)
        if route.name in BEFORE_SECOND_FACTOR:
            try:
                EXPECTATIONS[route.name](response, persona, method)
            except AssertionError as error:
                failures.append(f"{method} {url} ({route.name}): unexpected answer {error!r}")
            checked_allowed.add(route.name)
            continue
        problem = gated(response, persona)
        if problem:
            failures.append(f"{method} {url} ({route.name}) is not protected: {problem}")
    assert not failures, "\n".join(failures)
    assert checked_allowed == BEFORE_SECOND_FACTOR


def test_health_answers_only_status_ok(client: Client, db: None) -> None:
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_set_language_sets_only_the_language_cookie(client: Client, db: None) -> None:
    response = client.post(reverse("set_language"), {"language": "en", "next": "/konto/"})
    assert response.status_code == 302
    assert response["Location"] == "/konto/"
    assert set(response.cookies) == {"dienstweg_language"}
    # The page it returns to is still behind the gate.
    assert client.get("/konto/")["Location"].startswith(reverse("login"))


def test_set_language_does_not_redirect_off_site(client: Client, db: None) -> None:
    response = client.post(
        reverse("set_language"), {"language": "en", "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert not response["Location"].startswith("https://evil.example")


def asgi_get(path: str) -> dict[str, Any]:
    """GET through the whole ASGI app, as Daphne runs it (static handler included).

    Runs in a thread of its own: Playwright's sync API (tests/browser) keeps an event loop
    running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asgi_get_async(path)).result(timeout=90)


async def asgi_get_async(path: str) -> dict[str, Any]:
    from config.asgi import application

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(30)
    body = b""
    while True:
        # A file response ends with a message without "body" (the ASGI spec allows it).
        chunk = await communicator.receive_output(30)
        body += chunk.get("body", b"")
        if not chunk.get("more_body"):
            break
    headers = {name.lower(): value for name, value in start["headers"]}
    return {"status": start["status"], "headers": headers, "body": body}


def test_static_files_are_public() -> None:
    response = asgi_get("/static/dienstweg/site.css")
    assert response["status"] == 200
    assert response["headers"][b"content-type"].startswith(b"text/css")
    assert b"Dienstweg" in response["body"]


def test_static_handler_passes_pages_to_the_gate() -> None:
    response = asgi_get("/konto/")
    assert response["status"] == 302
    location = response["headers"][b"location"].decode()
    assert location.startswith(f"{reverse('login')}?next=")
