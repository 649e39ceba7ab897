"""The playground page (GET /, serve_app/static/) in headless Chromium against the real app.

Debian's `chromium` (make setup installs it when absent; no browser is downloaded) driven by
Playwright for Python. One app without weights (fallback scripts) with API keys on, so the page
must send the key on every call, the event stream included. The browser submits a prompt with
every request field, waits for the scene cards, edits, regenerates and deletes scenes, exports
the shot list and saves a screenshot under test-artifacts/ (git-ignored). Console errors, page
errors and any error banner fail the test; the only 4xx responses allowed are the two it causes
on purpose (no key yet, an out-of-range duration).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
KEY = "playground-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
WAIT_MS = 90_000  # the longest any one step may take on a loaded 2-core box
PROMPT = "A short film about a lost umbrella finding its way home"
NEW_NARRATION = "The rain stops; the umbrella waits by the door."
# Chromium logs every 4xx fetch as a console error; those the test causes are counted apart.
RESOURCE_ERROR = "Failed to load resource: the server responded with a status of"


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    missing = tmp_path_factory.mktemp("empty") / "chatglm3-6b"
    return deploy_app(model_path=str(missing), model_recheck_s=600, api_keys=KEY)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """What the page did wrong: console errors, uncaught exceptions, 4xx/5xx answers; and every
    request it sent (to check where the key went)."""

    def __init__(self, page):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed: list[tuple[str, str, int]] = []
        self.requests = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("response", self._on_response)
        page.on("request", lambda request: self.requests.append(request))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_response(self, response) -> None:
        if response.status >= 400:
            path = response.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
            self.failed.append((response.request.method, "/" + path, response.status))

    def unexpected_console_errors(self) -> list[str]:
        return [text for text in self.console_errors if not text.startswith(RESOURCE_ERROR)]


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def card_texts(page) -> list[str]:
    return page.locator("#timeline .scene").all_inner_texts()


def test_playground_makes_edits_and_exports_a_storyboard(app, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    watch = PageWatch(page)
    try:
        run_through_the_page(app, page, watch)
    finally:
        page.screenshot(path=str(artifact("playground.png")), full_page=True)
        context.close()


def run_through_the_page(app, page, watch: PageWatch) -> None:
    response = page.goto(f"{app.url}/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector("body[data-ready=true]")

    # Keys are on: the page says so, and works once the key is entered.
    assert page.inner_text("#key-state") == "key required"
    page.fill("#api-key", KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-state[data-state=accepted]")
    page.wait_for_selector("#health[data-state]")
    assert page.inner_text("#health") == "fallback scripts only"

    # The vocabularies come from the OpenAPI schema.
    schema = app.client().get("/openapi.json").json()["components"]["schemas"]
    languages = page.locator("select[name=language] option").evaluate_all(
        "options => options.map(option => option.value)"
    )
    assert languages == schema["TaskCreate"]["properties"]["language"]["enum"]
    formats = page.locator("#export-buttons button").evaluate_all(
        "buttons => buttons.map(button => button.dataset.format)"
    )
    assert formats == schema["ExportFormat"]["enum"]

    # Every request field, first with a duration the service refuses: its 422 is shown.
    page.fill("textarea[name=prompt]", PROMPT)
    page.select_option("select[name=language]", "en")
    page.fill("input[name=style]", "cinematic")
    page.fill("input[name=duration_s]", "3")
    page.fill("input[name=num_scenes]", "4")
    page.fill("input[name=visual_style]", "watercolor illustration, soft pastel palette")
    page.select_option("select[name=aspect_ratio]", "9:16")
    page.click("#add-character")
    page.fill("#character-rows .character-row >> nth=0 >> [data-part=name]", "Mia")
    page.fill(
        "#character-rows .character-row >> nth=0 >> [data-part=description]",
        "a girl in a yellow raincoat",
    )
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])")
    assert "body.duration_s" in page.inner_text("#error-fields")
    assert page.get_attribute("input[name=duration_s]", "aria-invalid") == "true"
    page.screenshot(path=str(artifact("playground-error.png")))
    assert page.locator("#timeline .scene").count() == 0

    page.fill("input[name=duration_s]", "24")
    page.click("#generate")
    expect(page.locator("#timeline .scene")).to_have_count(4)
    assert page.is_hidden("#error")

    with app.client() as client:
        [listed] = client.get("/api/tasks/", headers=AUTH).json()["items"]
        task_id = listed["task_id"]
        assert listed["request"]["characters"] == [
            {"name": "Mia", "description": "a girl in a yellow raincoat"}
        ]
        assert listed["request"]["aspect_ratio"] == "9:16"
        assert listed["request"]["style"] == "cinematic"
        script = listed["result"]
    assert page.inner_text("#script-title") == script["title"]
    assert page.locator("#task-list .task").count() == 1

    # Cards to scale: width per second the same for every card.
    widths = page.locator("#timeline .scene").evaluate_all(
        "cards => cards.map(card => card.getBoundingClientRect().width)"
    )
    per_second = [w / scene["duration"] for w, scene in zip(widths, script["scenes"], strict=True)]
    assert max(per_second) - min(per_second) < 0.5, per_second
    ruler = page.locator("#ruler .segment").evaluate_all(
        "segments => segments.map(segment => segment.getBoundingClientRect().width)"
    )
    assert ruler == pytest.approx(widths, abs=0.5)
    for text, scene in zip(card_texts(page), script["scenes"], strict=True):
        assert scene["camera"] in text and scene["visual_prompt"] in text
        assert scene["narration"] in text

    # The progress came from the event stream, with the key in the header and in no URL.
    events = [r for r in watch.requests if r.url.endswith(f"/api/tasks/{task_id}/events")]
    assert events and events[0].headers.get("authorization") == f"Bearer {KEY}"
    assert not [r.url for r in watch.requests if KEY in r.url]
    # Nothing comes from elsewhere: the page works offline.
    assert not [r.url for r in watch.requests if not r.url.startswith((app.url, "data:", "blob:"))]
    # ... and the finished task came in its `done` event: the page never had to read it.
    assert not [r for r in watch.requests if r.url.endswith(f"/api/tasks/{task_id}")]

    # Edit scene 2's narration.
    second = page.locator("#timeline .scene >> nth=1")
    second.locator("[data-action=edit]").click()
    page.fill(".scene.editing textarea[name=narration]", NEW_NARRATION)
    page.click(".scene.editing button[type=submit]")
    expect(page.locator(".scene.editing")).to_have_count(0)
    expect(page.locator("#timeline .scene >> nth=1")).to_contain_text(NEW_NARRATION)
    assert "revision 2 (edit)" in page.inner_text("#script-meta")

    # Regenerate scene 1 (the fallback writes another variant), delete scene 4.
    page.locator("#timeline .scene >> nth=0 >> [data-action=regenerate]").click()
    page.fill(".scene form.regenerate input[name=instruction]", "make it night")
    page.click(".scene form.regenerate button[type=submit]")
    expect(page.locator("#script-meta")).to_contain_text("revision 3")
    delete = page.locator("#timeline .scene >> nth=3 >> [data-action=delete]")
    delete.click()
    assert delete.inner_text() == "Really delete?"
    delete.click()
    expect(page.locator("#timeline .scene")).to_have_count(3)
    assert "revision 4" in page.inner_text("#script-meta")

    with app.client() as client:
        latest = client.get(f"/api/tasks/{task_id}", headers=AUTH).json()
    assert latest["revision"] == 4
    scenes = latest["result"]["scenes"]
    assert [scene["scene_number"] for scene in scenes] == [1, 2, 3]
    assert scenes[1]["narration"] == NEW_NARRATION

    # Export the shot list: the download is the service's CSV of the latest revision.
    with page.expect_download() as downloading:
        page.click("#export-buttons button[data-format=csv]")
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert [row["scene_number"] for row in rows] == ["1", "2", "3"]
    assert rows[1]["narration"] == NEW_NARRATION
    assert [row["camera"] for row in rows] == [scene["camera"] for scene in scenes]

    assert page.is_hidden("#error")
    assert page.locator("#timeline .scene").count() == 3
    assert not watch.page_errors, watch.page_errors
    assert not watch.unexpected_console_errors(), watch.unexpected_console_errors()
    assert sorted(watch.failed) == [("GET", "/api/tasks/", 401), ("POST", "/api/tasks/", 422)], (
        json.dumps(watch.failed)
    )
    assert sum(text.startswith(RESOURCE_ERROR) for text in watch.console_errors) == 2
