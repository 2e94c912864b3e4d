"""The pages over plain HTTP (no browser): login, redirects, XSRF, escaping and security headers."""

from __future__ import annotations

import html
import re

import pytest

from tests.browser.conftest import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    BOB_TOKEN,
    FAILING_COMMAND,
    Launch,
    PageServer,
    browser_login,
    xsrf_from,
)

XSS_NAME = "<img src=x onerror=alert(1)>"
PAGES = ["/login", "/sessions", "/sessions/new"]
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+=", re.IGNORECASE)


def cookie_header(response: object, name: str) -> str:
    """The Set-Cookie header that sets ``name``."""
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert found, f"no {name} cookie in {headers}"
    return str(found[0])


@pytest.mark.asyncio
async def test_pages_send_browsers_without_a_login_to_the_login_page(server: PageServer) -> None:
    client = server.client()
    for path in ("/sessions", "/sessions/new", "/sessions/00000000-0000-0000-0000-000000000000"):
        response = await client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=%2Fsessions")
    assert (await client.get("/")).headers["Location"] == "/sessions"


@pytest.mark.asyncio
async def test_a_valid_token_gets_an_httponly_samesite_cookie_and_goes_back_where_it_was(
    server: PageServer,
) -> None:
    client = server.client()
    form = await client.get("/login?next=/sessions/new")
    assert 'name="next" value="/sessions/new"' in form.text
    response = await client.post(
        "/login",
        data={"token": ALICE_TOKEN, "next": "/sessions/new", "_xsrf": xsrf_from(form.text)},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/sessions/new"
    cookie = cookie_header(response, "raworc-login").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    page = await client.get("/sessions")
    assert page.status_code == 200 and ">alice<" in page.text.replace("\n", "").replace(" ", "")


@pytest.mark.asyncio
async def test_the_login_cookie_is_secure_when_the_browser_came_over_https(
    server: PageServer,
) -> None:
    client = server.client(headers={"X-Forwarded-Proto": "https"})
    form = await client.get("/login")
    xsrf_cookie = cookie_header(form, "_xsrf")
    assert "; secure" in xsrf_cookie.lower()
    # httpx keeps Secure cookies off plain HTTP, as a browser would; send it as the proxy would.
    response = await client.post(
        "/login",
        data={"token": ALICE_TOKEN, "_xsrf": xsrf_from(form.text)},
        headers={"Cookie": xsrf_cookie.split(";")[0]},
    )
    assert response.status_code == 303
    assert "; secure" in cookie_header(response, "raworc-login").lower()


@pytest.mark.asyncio
async def test_a_wrong_token_shows_the_form_again_with_the_reason(server: PageServer) -> None:
    client = server.client()
    form = await client.get("/login")
    response = await client.post("/login", data={"token": "nope", "_xsrf": xsrf_from(form.text)})
    assert response.status_code == 422
    assert "That token is not valid" in response.text
    assert 'aria-invalid="true"' in response.text
    assert "raworc-login" not in response.headers.get("set-cookie", "")


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", "x"])
async def test_login_never_redirects_off_the_site(server: PageServer, target: str) -> None:
    client = server.client()
    form = await client.get("/login")
    response = await client.post(
        "/login", data={"token": ALICE_TOKEN, "next": target, "_xsrf": xsrf_from(form.text)}
    )
    assert response.headers["Location"] == "/sessions"


@pytest.mark.asyncio
async def test_logging_out_clears_the_cookie(server: PageServer) -> None:
    client = await browser_login(server, ALICE_TOKEN)
    page = await client.get("/sessions")
    response = await client.post("/logout", data={"_xsrf": xsrf_from(page.text)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?notice=logged-out"
    assert (await client.get("/sessions")).status_code == 302


@pytest.mark.asyncio
async def test_a_cookie_authenticated_post_without_the_xsrf_token_is_refused(
    server: PageServer,
) -> None:
    client = await browser_login(server, ALICE_TOKEN)
    form = await client.post("/sessions/new", data={"name": "sneaky"})
    assert form.status_code == 403
    assert "This form has expired" in form.text
    api = await client.post("/api/v0/sessions", json={"name": "sneaky"})
    assert api.status_code == 403
    assert (await client.post("/login", data={"token": ALICE_TOKEN})).status_code == 403
    listing = await server.client(ALICE_TOKEN).get("/api/v0/sessions")
    assert listing.json()["items"] == []


@pytest.mark.asyncio
async def test_a_cookie_authenticated_post_with_the_xsrf_token_goes_through(
    server: PageServer,
) -> None:
    client = await browser_login(server, ALICE_TOKEN)
    form = await client.get("/sessions/new")
    token = xsrf_from(form.text)
    created = await client.post("/sessions/new", data={"name": "from the form", "_xsrf": token})
    assert created.status_code == 303
    assert re.fullmatch(r"/sessions/[0-9a-f-]{36}", created.headers["Location"])
    api = await client.post(
        "/api/v0/sessions", json={"name": "from a script"}, headers={"X-XSRFToken": token}
    )
    assert api.status_code == 201


@pytest.mark.asyncio
async def test_bearer_token_api_clients_need_no_xsrf_token(server: PageServer) -> None:
    response = await server.client(ALICE_TOKEN).post("/api/v0/sessions", json={"name": "api"})
    assert response.status_code == 201
    anonymous = await server.client().post("/api/v0/sessions", json={"name": "api"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"


@pytest.mark.asyncio
async def test_the_login_cookie_authenticates_api_reads_for_the_pages_scripts(
    server: PageServer,
) -> None:
    session = await server.create("mine")
    client = await browser_login(server, ALICE_TOKEN)
    assert (await client.get(f"/api/v0/sessions/{session['id']}/events")).status_code == 200
    bob = await browser_login(server, BOB_TOKEN)
    assert (await bob.get(f"/api/v0/sessions/{session['id']}")).status_code == 404


@pytest.mark.asyncio
async def test_every_page_carries_a_strict_content_security_policy(server: PageServer) -> None:
    session = await server.create("headers")
    client = await browser_login(server, ALICE_TOKEN)
    paths = [*PAGES, f"/sessions/{session['id']}", f"/sessions/{session['id']}/delete"]
    paths += ["/sessions/11111111-1111-1111-1111-111111111111"]
    for path in paths:
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "<script>" not in response.text and " style=" not in response.text, path
        assert not INLINE_HANDLER.search(response.text), path
    static = await client.get("/static/js/live.js")
    assert static.headers["X-Content-Type-Options"] == "nosniff"
    assert "javascript" in static.headers["Content-Type"]


@pytest.mark.asyncio
async def test_session_names_and_prompts_are_escaped_everywhere(server: PageServer) -> None:
    prompt = "</textarea><script>alert(2)</script>"
    session = await server.create(XSS_NAME, starting_prompt=prompt)
    client = await browser_login(server, ALICE_TOKEN)
    for path in ("/sessions", f"/sessions/{session['id']}", f"/sessions/{session['id']}/delete"):
        text = (await client.get(path)).text
        assert XSS_NAME not in text and "<script>alert" not in text, path
        assert html.escape(XSS_NAME, quote=False) in text, path


@pytest.mark.asyncio
async def test_the_create_form_reports_each_invalid_field_next_to_it(server: PageServer) -> None:
    client = await browser_login(server, ALICE_TOKEN)
    token = xsrf_from((await client.get("/sessions/new")).text)
    empty = await client.post("/sessions/new", data={"name": " ", "_xsrf": token})
    assert empty.status_code == 422
    assert 'id="name-error"' in empty.text and "Name must be 1 to 253 characters long" in empty.text
    both = await client.post(
        "/sessions/new", data={"name": "", "namespace": "Not OK", "_xsrf": token}
    )
    assert both.status_code == 422
    assert 'id="name-error"' in both.text and 'id="namespace-error"' in both.text
    assert 'value="Not OK"' in both.text
    profile = await client.post(
        "/sessions/new", data={"name": "ok", "profile": "gpu", "_xsrf": token}
    )
    assert 'id="profile-error"' in profile.text and "no profiles" in profile.text


@pytest.mark.asyncio
async def test_the_create_form_leaves_an_empty_namespace_to_the_servers_default(
    server: PageServer,
) -> None:
    server.app.manager.default_namespace = "team-a"
    client = await browser_login(server, ALICE_TOKEN)
    form = (await client.get("/sessions/new")).text
    assert 'placeholder="team-a"' in form
    created = await client.post(
        "/sessions/new", data={"name": "defaulted", "namespace": "", "_xsrf": xsrf_from(form)}
    )
    assert created.status_code == 303
    session_id = created.headers["Location"].rsplit("/", 1)[-1]
    session = (await client.get(f"/api/v0/sessions/{session_id}")).json()
    assert session["namespace"] == "team-a"


@pytest.mark.asyncio
async def test_users_see_their_own_sessions_and_admins_see_everyones(server: PageServer) -> None:
    await server.create("alice's session", token=ALICE_TOKEN)
    await server.create("bob's session", token=BOB_TOKEN)
    alice = (await (await browser_login(server, ALICE_TOKEN)).get("/sessions")).text
    admin = (await (await browser_login(server, ADMIN_TOKEN)).get("/sessions")).text
    assert "alice&#39;s session" in alice and "bob&#39;s session" not in alice
    assert "alice&#39;s session" in admin and "bob&#39;s session" in admin
    assert 'id="filter-owner"' in admin and 'id="filter-owner"' not in alice


@pytest.mark.asyncio
async def test_the_list_filters_by_state_and_text_and_pages_with_a_cursor(
    server: PageServer,
) -> None:
    ids = [(await server.create(f"batch {n:02d}"))["id"] for n in range(27)]
    await server.create("the odd one")
    for session_id in ids:
        await server.wait_for_state(session_id, "ready")
    client = await browser_login(server, ALICE_TOKEN)
    first = (await client.get("/sessions?q=batch")).text
    assert first.count('data-session-id="') == 25 and "the odd one" not in first
    older = re.search(r'href="(/sessions\?q=batch&amp;cursor=[^"]+)" rel="next"', first)
    assert older, "no link to the next page"
    second = (await client.get(html.unescape(older.group(1)))).text
    assert second.count('data-session-id="') == 2 and "batch 00" in second
    idle = (await client.get("/sessions?state=idle")).text
    assert 'data-session-id="' not in idle and "No sessions match" in idle
    assert (await client.get("/sessions?state=bogus")).status_code == 422


@pytest.mark.asyncio
async def test_unknown_sessions_and_forbidden_ones_read_as_not_found(server: PageServer) -> None:
    session = await server.create("private", token=BOB_TOKEN)
    client = await browser_login(server, ALICE_TOKEN)
    for path in (f"/sessions/{session['id']}", "/sessions/not-a-uuid"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "Session not found" in response.text
        assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.asyncio
async def test_a_failed_session_page_explains_the_reason_in_words(launch: Launch) -> None:
    server = await launch(command=FAILING_COMMAND)
    session = await server.create("doomed")
    await server.wait_for_state(session["id"], "error")
    client = await browser_login(server, ALICE_TOKEN)
    text = (await client.get(f"/sessions/{session['id']}")).text
    assert "The session&#39;s process exited" in text
    assert "What to do" in text and "boom" in text and "exit status 3" in text
