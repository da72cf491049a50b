"""German by default, English on request; the page skeleton every screen reader relies on:
landmarks, a skip link and a label for every field."""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client
from django.urls import reverse

from tests.conftest import Network, verified_client


class Elements(HTMLParser):
    """The start tags of a page with their attributes, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def login_page(client: Client, **headers: str) -> str:
    response = client.get(reverse("login"), headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def choose_language(client: Client, language: str) -> None:
    response = client.post(reverse("set_language"), {"language": language, "next": "/anmelden/"})
    assert response.status_code == 302


def test_interface_is_german_although_the_browser_asks_for_english(
    client: Client, db: None
) -> None:
    html = login_page(client, accept_language="en")
    assert '<html lang="de">' in html
    assert "Anmelden" in html
    assert "Log in" not in html


def test_choosing_english_switches_the_login_page(client: Client, db: None) -> None:
    choose_language(client, "en")
    html = login_page(client)
    assert '<html lang="en">' in html
    assert "Log in" in html
    assert "Anmelden" not in html


def test_choosing_german_again_switches_back(client: Client, db: None) -> None:
    choose_language(client, "en")
    choose_language(client, "de")
    html = login_page(client, accept_language="en")
    assert '<html lang="de">' in html
    assert "Anmelden" in html


def test_unknown_language_cookie_falls_back_to_german(client: Client, db: None) -> None:
    client.cookies["dienstweg_language"] = "fr"
    html = login_page(client)
    assert '<html lang="de">' in html


def test_response_names_its_language(client: Client, db: None) -> None:
    assert client.get(reverse("login"))["Content-Language"] == "de"
    choose_language(client, "en")
    assert client.get(reverse("login"))["Content-Language"] == "en"


def test_login_page_has_landmarks_without_navigation(client: Client, db: None) -> None:
    page = Elements(login_page(client))
    assert len(page.all("header")) == 1
    assert len(page.all("main")) == 1
    assert len(page.all("footer")) == 1
    assert page.all("nav") == []  # nothing to navigate to before the second factor


def test_verified_member_gets_landmarks_and_navigation(network: Network) -> None:
    response = verified_client(network.anna).get(reverse("home"))
    page = Elements(response.content.decode())
    assert len(page.all("header")) == 1
    assert len(page.all("footer")) == 1
    (main,) = page.all("main")
    assert main["id"] == "main"
    navs = page.all("nav")
    assert len(navs) == 1
    assert navs[0]["aria-label"]  # named, so screen readers can tell it apart
    assert 'aria-current="page"' in response.content.decode()


def test_skip_link_is_first_and_points_at_main(client: Client, db: None) -> None:
    page = Elements(login_page(client))
    links = page.all("a")
    assert links[0]["href"] == "#main"
    assert "skip-link" in links[0]["class"]
    body_order = [tag for tag, _attrs in page.tags]
    assert body_order.index("a") < body_order.index("header")
    (main,) = page.all("main")
    assert main["id"] == "main"


def test_every_field_on_the_login_page_has_a_label(client: Client, db: None) -> None:
    page = Elements(login_page(client))
    labelled = {attrs.get("for") for attrs in page.all("label")}
    fields = [
        attrs
        for tag, attrs in page.tags
        if tag in {"input", "select", "textarea"}
        and attrs.get("type") not in {"hidden", "submit", "button"}
    ]
    names = {attrs.get("name") for attrs in fields}
    assert {"username", "password", "language"} <= names
    unlabelled = [
        attrs.get("name")
        for attrs in fields
        if not (attrs.get("id") and attrs["id"] in labelled) and not attrs.get("aria-label")
    ]
    assert unlabelled == []
