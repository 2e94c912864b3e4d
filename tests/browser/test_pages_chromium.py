"""The session pages in headless Chromium: live updates, forms, escaping, failures, phone width.

Each test checks at the end that the page raised no script error, broke no Content-Security-
Policy rule (Chromium reports those on the console) and opened no dialog.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from kubesim import KubeSim
from tests.browser.conftest import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    FAILING_COMMAND,
    Launch,
    OpenPage,
    PageServer,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_PROMPT = "<script>alert(2)</script>"
SESSION_PAGE = re.compile(r"/sessions/[0-9a-f-]{36}$")
TICKING = ["sh", "-c", "i=0; while [ $i -lt 900 ]; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
PHONE = {"width": 390, "height": 844}


async def mark_page(page: object) -> None:
    """Leave a marker in the page's window; a reload would remove it."""
    await page.evaluate("window.stillTheSamePage = true")  # type: ignore[attr-defined]


async def assert_not_reloaded(page: object) -> None:
    """The marker left by :func:`mark_page` is still there."""
    assert await page.evaluate("window.stillTheSamePage === true")  # type: ignore[attr-defined]


async def test_a_user_logs_in_creates_a_session_and_watches_it_become_ready_without_reloading(
    launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(ready_after=1.0)
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await (
        page.get_by_role("navigation", name="Main").get_by_role("link", name="New session").click()
    )
    await page.get_by_label("Name", exact=True).fill("data cleanup")
    await page.get_by_label("Starting prompt").fill("Tidy the CSV files")
    await page.get_by_role("button", name="Create session").click()
    await page.wait_for_url(SESSION_PAGE)

    badge = page.locator("#state-badge")
    await expect(badge).to_have_attribute("data-state", "init")
    await expect(badge).to_have_text("starting")
    await mark_page(page)
    await expect(badge).to_have_attribute("data-state", "ready")
    await expect(badge).to_have_text("ready")
    await expect(page.locator("#history .history__item").first).to_contain_text("session is ready")
    await expect(page.locator("#live-status")).to_have_text("Session state: ready.")
    await expect(page.locator("#log")).to_contain_text("hello from data cleanup")
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    await assert_not_reloaded(page)
    await browsing.screenshot("detail-live")
    browsing.assert_clean()


async def test_a_session_is_paused_resumed_and_deleted_after_confirmation(
    launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(ready_after=0.5)
    session = await server.create("pausable")
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.get_by_role("link", name="pausable").click()
    badge = page.locator("#state-badge")
    await expect(badge).to_have_attribute("data-state", "ready")

    await page.get_by_role("button", name="Pause").click()
    await expect(badge).to_have_attribute("data-state", "idle")
    await expect(badge).to_have_text("sleeping — wakes on next request")
    await expect(page.locator(".status-card__note")).to_contain_text(
        "It was paused on request. It wakes on the next request"
    )

    await page.get_by_role("button", name="Resume").click()
    await mark_page(page)
    await expect(badge).to_have_attribute("data-state", "ready")
    await assert_not_reloaded(page)

    await page.get_by_role("link", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete this session?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    await browsing.screenshot("delete-confirmation")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(badge).to_have_attribute("data-state", "ready")

    await page.get_by_role("link", name="Delete…").click()
    await dialog.get_by_role("button", name="Delete session").click()
    await page.wait_for_url("**/sessions?notice=deleted")
    await expect(page.get_by_role("status").first).to_have_text("The session was deleted.")
    assert (
        await server.client(ALICE_TOKEN).get(f"/api/v0/sessions/{session['id']}")
    ).status_code == 404
    browsing.assert_clean()


async def test_the_list_follows_states_new_sessions_and_deletions_live(
    launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(ready_after=1.0)
    doomed = await server.create("to be deleted")
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    starting = await server.create("starting soon")
    await page.goto("/sessions")
    await mark_page(page)
    row = page.locator(f'tr[data-session-id="{starting["id"]}"]')
    await expect(row.locator(".badge")).to_have_attribute("data-state", "init")
    await expect(row.locator(".badge")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#live-status")).to_have_text("starting soon is now ready.")

    await server.create("made elsewhere")
    await expect(page.locator("#new-sessions")).to_be_visible()
    await server.client(ALICE_TOKEN).delete(f"/api/v0/sessions/{doomed['id']}")
    gone = page.locator(f'tr[data-session-id="{doomed["id"]}"]')
    await expect(gone.locator(".badge")).to_have_text("deleted")
    await assert_not_reloaded(page)
    await browsing.screenshot("list")
    browsing.assert_clean()


async def test_the_create_form_shows_what_is_wrong_next_to_each_field(
    server: PageServer, open_page: OpenPage
) -> None:
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.goto("/sessions/new")
    await page.get_by_label("Namespace").fill("Team Blue!")
    await page.get_by_label("Name", exact=True).fill("   ")
    await page.get_by_role("button", name="Create session").click()

    summary = page.get_by_role("alert")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Name must be 1 to 253 characters long")
    await expect(summary).to_contain_text("Namespace must be 1 to 63 lowercase letters")
    name = page.get_by_label("Name", exact=True)
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#name-error")).to_be_visible()
    await expect(page.locator("#namespace-error")).to_be_visible()
    await expect(page.get_by_label("Namespace")).to_have_value("Team Blue!")
    await expect(page.get_by_label("Namespace")).to_have_attribute("aria-invalid", "true")
    await browsing.screenshot("create-validation-errors")

    await summary.get_by_role("link").first.click()
    await expect(name).to_be_focused()
    await name.fill("fine name")
    await page.get_by_label("Namespace").fill("team-blue")
    await page.get_by_role("button", name="Create session").click()
    await page.wait_for_url(SESSION_PAGE)
    await expect(page.locator(".meta")).to_contain_text("team-blue")
    browsing.assert_clean(allow_statuses=(422,))


async def test_a_session_named_like_markup_renders_as_inert_text(
    server: PageServer, open_page: OpenPage
) -> None:
    session = await server.create(XSS_NAME, starting_prompt=XSS_PROMPT)
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    link = page.get_by_role("link", name=XSS_NAME)
    await expect(link).to_have_text(XSS_NAME)
    await link.click()
    await page.wait_for_url(f"**/sessions/{session['id']}")
    await expect(page.locator("h1")).to_have_text(XSS_NAME)
    await expect(page.locator(".prompt")).to_have_text(XSS_PROMPT)
    await expect(page.locator("#log")).to_contain_text(f"hello from {XSS_NAME}")
    await expect(page.locator("#history")).to_contain_text(f"session '{XSS_NAME}' created")
    assert await page.locator("img[src=x], main script:not([type])").count() == 0
    await page.wait_for_timeout(200)  # a broken image's onerror would have fired by now
    assert browsing.dialogs == []
    browsing.assert_clean()


async def test_a_failing_session_shows_its_reason_in_words(
    launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(command=FAILING_COMMAND, ready_after=1.0)
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.goto("/sessions/new")
    await page.get_by_label("Name", exact=True).fill("doomed")
    await page.get_by_role("button", name="Create session").click()
    await page.wait_for_url(SESSION_PAGE)
    await mark_page(page)

    badge = page.locator("#state-badge")
    await expect(badge).to_have_attribute("data-state", "error")
    problem = page.get_by_role("region", name="The session's process exited")
    await expect(problem).to_be_visible()
    await expect(problem).to_contain_text("What to do")
    await expect(problem).to_contain_text("exit status 3")
    await expect(problem).to_contain_text("boom")
    await expect(page.get_by_role("button", name="Resume")).to_be_visible()
    await assert_not_reloaded(page)
    await browsing.screenshot("error-view")
    browsing.assert_clean()


async def test_the_log_follows_new_output_until_follow_is_turned_off(
    launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(command=TICKING)
    session = await server.create("ticker")
    await server.wait_for_state(session["id"], "ready")
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.goto(f"/sessions/{session['id']}")
    log = page.locator("#log")
    await expect(log).to_contain_text("tick 2")
    await mark_page(page)
    await expect(log).to_contain_text("tick 8")
    await page.get_by_label("Follow").uncheck()
    await page.wait_for_timeout(300)
    frozen = await log.inner_text()
    await page.wait_for_timeout(700)
    assert await log.inner_text() == frozen
    await assert_not_reloaded(page)
    browsing.assert_clean()


async def test_the_pages_fit_a_phone_screen(launch: Launch, open_page: OpenPage) -> None:
    server = await launch(command=FAILING_COMMAND)
    failed = await server.create("a session whose name is rather long for a phone screen")
    await server.wait_for_state(failed["id"], "error")
    browsing = await open_page(server, viewport=PHONE)
    page = browsing.page
    await browsing.log_in(ADMIN_TOKEN)
    for path, name in (("/sessions", "phone-list"), (f"/sessions/{failed['id']}", "phone-detail")):
        await page.goto(path)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
        await browsing.screenshot(name)
    await page.goto("/sessions/new")
    await browsing.screenshot("phone-create")
    browsing.assert_clean()


async def test_the_pages_can_be_used_with_the_keyboard_and_every_control_has_a_label(
    server: PageServer, open_page: OpenPage
) -> None:
    await server.create("keyboard")
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    outline = await skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline not in ("", "none")
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    for path in ("/sessions", "/sessions/new", "/login"):
        await page.goto(path)
        unlabeled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabeled == [], f"{path}: unlabeled controls {unlabeled}"
        assert await page.locator("main").count() == 1
    browsing.assert_clean()


async def test_logging_out_from_the_header_returns_to_the_login_page(
    server: PageServer, open_page: OpenPage
) -> None:
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url("**/login?notice=logged-out")
    await expect(page.get_by_role("status")).to_have_text("You are logged out.")
    await page.goto("/sessions")
    await page.wait_for_url("**/login?next=%2Fsessions")
    await browsing.screenshot("login")
    browsing.assert_clean()


async def test_on_kubernetes_the_session_page_shows_its_pod_and_claim_and_explains_a_bad_image(
    kubesim: KubeSim, launch: Launch, open_page: OpenPage
) -> None:
    server = await launch(kubesim=kubesim)
    browsing = await open_page(server)
    page = browsing.page
    await browsing.log_in(ALICE_TOKEN)
    await page.goto("/sessions/new")
    await page.get_by_label("Name", exact=True).fill("on a pod")
    await page.get_by_label("Profile").select_option("small")
    await page.get_by_role("button", name="Create session").click()
    await page.wait_for_url(SESSION_PAGE)
    await expect(page.locator("#state-badge")).to_have_attribute("data-state", "ready")
    compute = page.get_by_role("region", name="Pod and workspace")
    await expect(compute.get_by_role("table", name="Requests and limits")).to_contain_text("100m")
    await expect(compute).to_contain_text("Bound")
    await expect(compute.get_by_role("table", name="Conditions")).to_contain_text("Ready")
    for label in ("Node", "Pod IP", "Host IP"):
        fact = compute.locator(f"dt:text-is('{label}') + dd")
        await expect(fact).not_to_have_text("—")
    await expect(page.get_by_role("region", name="Kubernetes events")).to_contain_text("Pulled")
    await browsing.screenshot("detail-kubernetes")

    await page.goto("/sessions/new")
    await page.get_by_label("Name", exact=True).fill("bad image")
    await page.get_by_label("Profile").select_option("broken")
    await page.get_by_role("button", name="Create session").click()
    await page.wait_for_url(SESSION_PAGE)
    problem = page.get_by_role("region", name="The container image can't be pulled")
    await expect(problem).to_be_visible()
    await expect(problem).to_contain_text("KUBERNETES_IMAGE")
    await expect(problem).to_contain_text("does-not-exist:1")
    await browsing.screenshot("error-image-pull")
    browsing.assert_clean()
