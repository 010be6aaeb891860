"""The playground's files as served: what the page may load, and what it is told it may load.

(The page itself, in a browser, is test_playground_browser.py.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from urllib.parse import urljoin, urlsplit

import pytest

from conversation_service.entrypoints.http.playground_routes import (
    CONTENT_SECURITY_POLICY,
    PLAYGROUND_ASSETS,
)
from tests.http.conftest import Api
from tests.http.test_openapi import Contract

# Static files: the database does not matter.
pytestmark = pytest.mark.backends("sqlite")

FOLDER = resources.files("conversation_service.entrypoints.http").joinpath("playground")


class _Page(HTMLParser):
    """The URLs a page references, and anything that would need 'unsafe-inline'."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        values = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self.inline += [f"{tag} {name}" for name, _ in attrs if name == "style" or name[:2] == "on"]
        if tag == "style" or (tag == "script" and not values.get("src")):
            self.inline.append(tag)

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.inline.append("script text")


@pytest.fixture
async def contract(api: Api) -> Contract:
    return Contract((await api.client.get("/openapi.json")).json())


async def test_root_leads_to_the_playground(api: Api, contract: Contract) -> None:
    root = await api.client.get("/")
    assert root.status_code == 302
    assert root.headers["location"] == "playground"  # relative: works behind a path prefix
    contract.check(root, "/")
    page = await api.client.get(urljoin(str(root.url), root.headers["location"]))
    assert page.status_code == 200 and page.url.path == "/playground"


async def test_the_page_is_told_to_load_and_call_this_server_only(
    api: Api, contract: Contract
) -> None:
    page = await api.client.get("/playground")
    contract.check(page, "/playground")
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    for directive in ("default-src", "script-src", "style-src", "img-src", "connect-src"):
        assert directives[directive] == "'self'", directive
    assert directives["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"

    parsed = _Page()
    parsed.feed(page.text)
    assert parsed.inline == [], "inline script or style: the policy would block it"


async def test_every_file_the_page_loads_is_served_here(api: Api, contract: Contract) -> None:
    page = await api.client.get("/playground")
    parsed = _Page()
    parsed.feed(page.text)
    loaded = set()
    for reference in parsed.urls:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, f"{reference} is not this server"
        url = urljoin(str(page.url), reference)
        answer = await api.client.get(url)
        assert answer.status_code == 200, reference
        loaded.add(urlsplit(url).path)
    assert "/playground/assets/app.js" in loaded and "/playground/assets/playground.css" in loaded

    # The scripts are modules: follow their imports, which must all be files served here.
    scripts = [name for name, kind in PLAYGROUND_ASSETS.items() if kind == "text/javascript"]
    for name in PLAYGROUND_ASSETS:
        asset = await api.client.get(f"/playground/assets/{name}")
        contract.check(asset, "/playground/assets/{name}")
        assert asset.headers["content-type"].split(";")[0] == PLAYGROUND_ASSETS[name]
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert not re.search(r"https?://|\burl\(\s*['\"]?//", asset.text), f"{name} reaches out"
        for imported in re.findall(r'^import .* from "\./([^"]+)";$', asset.text, re.M):
            assert imported in scripts, f"{name} imports {imported}, which is not served"
            loaded.add(f"/playground/assets/{imported}")
    assert {f"/playground/assets/{name}" for name in PLAYGROUND_ASSETS} <= loaded, (
        "a file is served that nothing loads"
    )


def test_every_file_of_the_folder_is_served_and_nothing_else() -> None:
    files = {item.name for item in FOLDER.iterdir()}
    assert files == {"index.html", *PLAYGROUND_ASSETS}


async def test_an_unknown_asset_is_a_json_404(api: Api, contract: Contract) -> None:
    for name in ("index.html", "..%2Fplayground_routes.py", "app.py"):
        missing = await api.client.get(f"/playground/assets/{name}")
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] == "not_found"
    contract.check(missing, "/playground/assets/{name}")
