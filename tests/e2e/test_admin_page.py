"""The admin page in a real browser against the real service: API, a Celery worker on Redis, PostgreSQL,
and the fake providers. Each test follows what a person sees and does; screenshots of the main states go
to artifacts/screenshots/."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import pytest
from playwright.async_api import Page, expect

from models.providers import ProviderRecord

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def key(tag: str = "ok") -> str:
    return f"fake-{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def service(api_factory, live_settings, worker_factory):
    api = await api_factory(live_settings)
    worker_factory(live_settings)
    return api


async def sign_in(tab, api, role: str = "admin", org: str = "acme") -> str:
    """Open the sign-in link `llm-providers run` prints (`/ui/#token=...`); returns the token."""
    token = api.token(role, org)
    await tab.page.goto(f"{api.base}/ui/#token={token}")
    await expect(tab.page.locator("#identity")).to_contain_text(f"Organization {org}")
    return token


async def add_provider(page: Page, *, kind: str, name: str, api_key: str, model: str | None = None,
                       endpoint: str | None = None, api_version: str | None = None) -> None:
    await page.get_by_role("button", name="Add provider").click()
    dialog = page.get_by_role("dialog", name="Add provider")
    await dialog.get_by_label("Provider", exact=True).select_option(label=kind)
    await dialog.get_by_label("Name", exact=True).fill(name)
    if endpoint is not None:
        await dialog.get_by_label("Endpoint").fill(endpoint)
    if api_version is not None:
        await dialog.get_by_label("API version").fill(api_version)
    await dialog.get_by_label("API key").fill(api_key)
    if model is not None:
        await dialog.locator("#f-model").fill(model)
    await dialog.get_by_role("button", name="Add provider").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("status").filter(has_text=f"Added {name}.")).to_be_visible()


async def confirm(page: Page, title: str, button: str) -> None:
    dialog = page.get_by_role("dialog", name=title)
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=button).click()
    await expect(dialog).to_be_hidden()


def card(page: Page, name: str):
    return page.get_by_role("article", name=name)


async def test_an_admin_adds_tests_activates_switches_edits_and_deletes(service, open_tab):
    tab = await open_tab()
    page = tab.page
    token = await sign_in(tab, service)
    assert page.url == f"{service.base}/ui/"  # the fragment with the token is gone from the address bar
    assert await page.evaluate("sessionStorage.getItem('llmp.token')") == token
    assert await page.evaluate("localStorage.length") == 0
    await expect(page.locator("#identity")).to_contain_text("admin")
    await expect(page.get_by_text("No providers yet.")).to_be_visible()
    await expect(page.get_by_role("switch", name="Use platform defaults")).to_have_attribute("aria-checked", "true")
    await tab.shot("01-admin-empty")

    # Add: the catalog drives the form; "Fetch models" lists what the key can use.
    good = key()
    await page.get_by_role("button", name="Add provider").click()
    dialog = page.get_by_role("dialog", name="Add provider")
    await expect(dialog.get_by_label("Provider", exact=True)).to_be_focused()
    await expect(dialog.get_by_label("Endpoint")).to_be_hidden()  # OpenAI needs no endpoint
    await dialog.get_by_label("Name", exact=True).fill("Main OpenAI")
    await dialog.get_by_label("API key").fill(good)
    await dialog.get_by_role("button", name="Fetch models").click()
    await expect(dialog.get_by_text("3 models available to this key")).to_be_visible()
    await dialog.get_by_label("Models this key can use").select_option("gpt-4o-mini")
    await expect(dialog.locator("#f-model")).to_have_value("gpt-4o-mini")
    await tab.shot("02-add-provider-fetched-models", full_page=False)
    await dialog.get_by_role("button", name="Add provider").click()
    main = card(page, "Main OpenAI")
    await expect(main).to_contain_text("••••" + good[-4:])
    await expect(main).to_contain_text("gpt-4o-mini")
    await expect(main).to_contain_text("Health not checked")

    bad = "sk-wrong-" + uuid.uuid4().hex
    await add_provider(page, kind="OpenAI", name="Old key", api_key=bad, model="gpt-4.1-mini")

    # Test: a passing key and a refused one, each verdict in words on its card.
    await main.get_by_role("button", name="Test Main OpenAI").focus()
    await page.keyboard.press("Enter")
    await expect(main.get_by_role("status")).to_contain_text("Test passed")
    await expect(main.get_by_role("status")).to_contain_text("using gpt-4o-mini")
    await expect(main.get_by_role("button", name="Test Main OpenAI")).to_be_focused()  # focus comes back
    old = card(page, "Old key")
    await old.get_by_role("button", name="Test Old key").click()
    await expect(old.get_by_role("status")).to_contain_text("Test failed: the key is not accepted (invalid_api_key)")
    await expect(old.get_by_role("status")).to_contain_text("The API key was rejected by OpenAI")
    await expect(old.get_by_role("status")).to_contain_text("provider status 401")
    assert bad not in await page.content() and good not in await page.content()
    await tab.shot("03-test-results")
    await tab.shot("03-test-results-phone", phone=True)

    # Activate: the confirmation names the consequence; OpenAI has no tool-calling warning.
    await main.get_by_role("button", name="Activate Main OpenAI").click()
    dialog = page.get_by_role("dialog", name="Activate Main OpenAI?")
    await expect(dialog).to_contain_text("Every AI feature of this organization will use Main OpenAI")
    await expect(dialog.get_by_text("does not support tool calling")).to_have_count(0)
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await confirm(page, "Activate Main OpenAI?", "Check and activate")
    await expect(main.get_by_role("status")).to_contain_text("Main OpenAI is now active")
    await expect(main.get_by_text("Active", exact=True)).to_be_visible()
    await expect(page.locator("#now-using")).to_contain_text("Now using: Main OpenAI")
    await expect(page.get_by_role("switch", name="Use platform defaults")).to_have_attribute("aria-checked", "false")
    delete = main.get_by_role("button", name="Delete Main OpenAI")
    await expect(delete).to_be_disabled()
    await expect(main).to_contain_text("The active provider cannot be deleted")
    await tab.shot("04-active")

    # A failed activation says why and changes nothing.
    await old.get_by_role("button", name="Activate Old key").click()
    await confirm(page, "Activate Old key?", "Check and activate")
    await expect(old.get_by_role("status")).to_contain_text("Not activated: the key is not accepted")
    await expect(old.get_by_role("status")).to_contain_text("Nothing was changed.")
    await expect(page.locator("#now-using")).to_contain_text("Now using: Main OpenAI")
    await expect(old.get_by_text("Active", exact=True)).to_have_count(0)
    await tab.shot("05-activation-failed")

    # Back to the platform defaults with the switch.
    await page.get_by_role("switch", name="Use platform defaults").click()
    await confirm(page, "Use the platform defaults?", "Use platform defaults")
    await expect(page.get_by_role("switch", name="Use platform defaults")).to_have_attribute("aria-checked", "true")
    await expect(page.locator("#now-using")).to_contain_text("the platform defaults")
    await expect(main.get_by_text("Active", exact=True)).to_have_count(0)
    await expect(delete).to_be_enabled()

    # Edit: the key is write-only; a new one rotates it.
    await old.get_by_role("button", name="Edit Old key").click()
    dialog = page.get_by_role("dialog", name="Edit Old key")
    key_field = dialog.get_by_label("API key")
    await expect(key_field).to_have_value("")
    await expect(key_field).to_have_attribute("placeholder", f"Leave empty to keep ••••{bad[-4:]}")
    await expect(dialog).to_contain_text("Leave this empty to keep it.")
    new_key = key()
    await key_field.fill(new_key)
    await tab.shot("06-edit-provider", full_page=False)
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status").filter(has_text="Saved Old key.")).to_contain_text(
        f"The key now ends in {new_key[-4:]}.")
    await expect(old).to_contain_text("••••" + new_key[-4:])
    await old.get_by_role("button", name="Test Old key").click()
    await expect(old.get_by_role("status")).to_contain_text("Test passed")

    # Delete, after confirming.
    await old.get_by_role("button", name="Delete Old key").click()
    await confirm(page, "Delete Old key?", "Delete provider")
    await expect(old).to_have_count(0)
    await expect(page.get_by_role("status").filter(has_text="Deleted Old key.")).to_be_visible()

    # The audit log tells the story, newest first.
    audit = page.get_by_role("region", name="Audit log entries")
    rows = audit.locator("tbody tr")
    await expect(rows.first).to_contain_text("Deleted")
    await expect(rows.first).to_contain_text("Old key (deleted)")
    for text in ("Edited", "key rotated: true", "Switched to platform defaults", "check error: invalid_api_key",
                 "Activated", "Added"):
        await expect(audit).to_contain_text(text)
    await tab.shot("07-audit-log")
    await tab.shot("07-audit-log-phone", phone=True)
    assert not any(token in url for url in tab.requested), "the token reached a URL"
    assert tab.problems() == []


async def test_tool_calling_warning_job_progress_and_endpoint_edits(service, open_tab, fakes):
    tab = await open_tab()
    page = tab.page
    await sign_in(tab, service)

    # The form shows what each kind needs, with the catalog's hints and example models.
    await page.get_by_role("button", name="Add provider").click()
    dialog = page.get_by_role("dialog", name="Add provider")
    await dialog.get_by_label("Provider", exact=True).select_option(label="Anthropic")
    await expect(dialog).to_contain_text("The tool-calling agents (agentic fixer, scan agent) are not available")
    assert "claude-haiku-4-5" in await dialog.locator("#model-suggestions option").evaluate_all(
        "options => options.map(o => o.value)")
    await dialog.get_by_label("Provider", exact=True).select_option(value="openai_compatible")
    await expect(dialog.get_by_label("Endpoint")).to_be_visible()
    await expect(dialog).to_contain_text("The API root including /v1")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("button", name="Add provider")).to_be_focused()

    # An Anthropic key whose check outlasts the sync wait: the page follows the job to its end.
    await add_provider(page, kind="Anthropic", name="Claude", api_key=key("slow4000"), model="claude-haiku-4-5")
    claude = card(page, "Claude")
    await claude.get_by_role("button", name="Activate Claude").click()
    dialog = page.get_by_role("dialog", name="Activate Claude?")
    await expect(dialog).to_contain_text("Anthropic does not support tool calling")
    await expect(dialog).to_contain_text("the agentic fixer and scan agent are unavailable")
    await tab.shot("08-activate-tool-calling-warning", full_page=False)
    await tab.shot("08-activate-tool-calling-warning-phone", phone=True, full_page=False)
    await dialog.get_by_role("button", name="Check and activate").click()
    await expect(claude.get_by_role("status")).to_contain_text("Activating: asking the provider")
    await expect(claude.get_by_role("button", name="Test Claude")).to_be_disabled()
    await expect(claude.get_by_role("status")).to_contain_text("Activating: the check is running", timeout=6000)
    await tab.shot("09-activation-in-progress")
    await expect(claude.get_by_role("status")).to_contain_text("Claude is now active", timeout=20000)
    await expect(page.locator("#now-using")).to_contain_text("Now using: Claude")

    # Gemini warns too; cancelling changes nothing and gives focus back.
    await add_provider(page, kind="Google Gemini", name="Gemini", api_key=key(), model="gemini-2.5-flash")
    gemini = card(page, "Gemini")
    activate = gemini.get_by_role("button", name="Activate Gemini")
    await activate.click()
    dialog = page.get_by_role("dialog", name="Activate Gemini?")
    await expect(dialog).to_contain_text("Google Gemini does not support tool calling")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(activate).to_be_focused()
    await expect(page.locator("#now-using")).to_contain_text("Now using: Claude")

    # An OpenAI-compatible server: a new endpoint needs the key again, and the page says so.
    await add_provider(page, kind="OpenAI-compatible (Ollama, vLLM, Groq, Together, ...)", name="Local",
                       api_key=key(), model="llama3.2", endpoint=fakes.base_url("compat"))
    local = card(page, "Local")
    await expect(local).to_contain_text(fakes.base_url("compat"))
    await local.get_by_role("button", name="Edit Local").click()
    dialog = page.get_by_role("dialog", name="Edit Local")
    await expect(dialog).to_contain_text("Changing the endpoint requires entering the API key again")
    await dialog.get_by_label("Endpoint").fill(fakes.base_url("compat_bare"))
    await expect(dialog).to_contain_text("The endpoint changed: enter the API key again to save.")
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog.locator("#f-api_key-error")).to_have_text("API key: is required.")
    await expect(dialog.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    await tab.shot("10-edit-endpoint-needs-key", full_page=False)
    await tab.shot("10-edit-endpoint-needs-key-phone", phone=True, full_page=False)
    await dialog.get_by_role("button", name="Fetch models").click()
    await expect(dialog.locator("#f-api_key-error")).to_contain_text("is needed again")
    replacement = key()
    await dialog.get_by_label("API key").fill(replacement)
    await dialog.get_by_role("button", name="Fetch models").click()
    await expect(dialog.get_by_text("3 models available to this key")).to_be_visible()
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog).to_be_hidden()
    await expect(local).to_contain_text(fakes.base_url("compat_bare"))
    await expect(local).to_contain_text("••••" + replacement[-4:])
    assert tab.problems() == []


async def test_a_member_sees_everything_read_only(service, open_tab):
    status, first, _ = await service.call("POST", "/llm-providers", json={
        "kind": "openai", "name": "Team OpenAI", "model": "gpt-4.1-mini", "api_key": key()})
    assert status == 201
    status, second, _ = await service.call("POST", "/llm-providers", json={
        "kind": "gemini", "name": "Spare Gemini", "model": "gemini-2.5-flash", "api_key": key()})
    assert status == 201
    status, _, _ = await service.call("POST", f"/llm-providers/{first['id']}/activate")
    assert status == 200
    await ProviderRecord.filter(id=second["id"]).update(
        health_status="failing", health_consecutive_failures=3, health_checked_at=datetime.now(timezone.utc),
        health_last_error={"code": "invalid_api_key", "message": "The API key was rejected by Google Gemini "
                           "(400 INVALID_ARGUMENT, API_KEY_INVALID).", "provider_status": 400})

    tab = await open_tab()
    page = tab.page
    await sign_in(tab, service, role="member")
    await expect(page.locator("#identity")).to_contain_text("member")
    await expect(page.get_by_text("You are signed in as a member")).to_be_visible()
    team = card(page, "Team OpenAI")
    await expect(team.get_by_text("Active", exact=True)).to_be_visible()
    await expect(team).to_contain_text("Healthy")
    spare = card(page, "Spare Gemini")
    await expect(spare).to_contain_text("Failing")
    await expect(spare).to_contain_text("Last error: the key is not accepted (invalid_api_key): The API key was "
                                        "rejected by Google Gemini")
    await expect(spare).to_contain_text("3 failed checks in a row.")
    await expect(spare).to_contain_text("Tool-calling agents are not available with this provider.")
    await expect(page.get_by_role("button", name=re.compile(r"^(Add provider|Test|Activate|Edit|Delete)"))) \
        .to_have_count(0)
    await expect(page.get_by_role("switch", name="Use platform defaults")).to_be_disabled()
    await expect(page.get_by_role("heading", name="Audit log")).to_have_count(0)
    await tab.shot("11-member-read-only")
    await tab.shot("11-member-read-only-phone", phone=True)
    assert tab.problems() == []


async def test_sign_in_form_token_errors_and_api_errors_in_words(api_factory, live_settings, open_tab, fakes):
    api = await api_factory(live_settings)
    tab = await open_tab()
    page = tab.page
    response = await page.goto(f"{api.base}/ui")  # redirected to /ui/
    assert page.url == f"{api.base}/ui/" and response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    form = page.get_by_role("region", name="Sign in")
    token_box = form.get_by_label("Bearer token")
    await expect(token_box).to_be_focused()
    await tab.shot("00-sign-in")

    async def try_token(text: str, message: str) -> None:
        await token_box.fill(text)
        await form.get_by_role("button", name="Sign in").click()
        await expect(form.locator("#signin-error")).to_contain_text(message)

    await try_token("not a token", "That is not a bearer token")
    await try_token(api.token("admin", "acme", ttl=-5), "This token has expired")
    await try_token(api.token("ops"), "the token's role is ops")
    forged = api.token("admin", "acme")[:-6] + "AAAAAA"
    await try_token(forged, "The bearer token was refused: the token's signature is not valid. Sign in again.")
    assert await page.evaluate("sessionStorage.getItem('llmp.token')") is None

    good = api.token("owner", "acme")
    await token_box.fill(good)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the form works from the keyboard
    await expect(page.locator("#identity")).to_contain_text("Organization acme · owner")

    # Errors from the API are shown in words, with the reasons per field.
    await add_provider(page, kind="OpenAI", name="Main", api_key=key(), model="gpt-4.1-mini")
    await page.get_by_role("button", name="Add provider").click()
    dialog = page.get_by_role("dialog", name="Add provider")
    await dialog.get_by_label("Name", exact=True).fill("Main")
    await dialog.get_by_label("API key").fill(key())
    await dialog.locator("#f-model").fill("gpt-4.1-mini")
    await dialog.get_by_role("button", name="Add provider").click()
    await expect(dialog.get_by_role("alert")).to_have_text("A provider named 'Main' already exists.")
    await dialog.get_by_label("Provider", exact=True).select_option(label="Azure OpenAI")
    await dialog.get_by_label("Name", exact=True).fill("Azure")
    await dialog.get_by_label("Endpoint").fill("not a url")
    await dialog.get_by_label("API version").fill("2024-10-21")
    await dialog.get_by_role("button", name="Add provider").click()
    await expect(dialog.get_by_role("alert")).to_have_text("Some fields are invalid: endpoint.")
    await expect(dialog.locator("#f-endpoint-error")).to_have_text("Endpoint: must be an absolute http(s) URL.")
    await expect(dialog.get_by_label("Endpoint")).to_be_focused()
    await tab.shot("12-form-errors", full_page=False)

    # A refused key while fetching models is explained, and the key is not echoed.
    await dialog.get_by_label("Provider", exact=True).select_option(label="OpenAI")
    wrong = "sk-wrong-" + uuid.uuid4().hex
    await dialog.get_by_label("API key").fill(wrong)
    await dialog.get_by_role("button", name="Fetch models").click()
    await expect(dialog.locator("#models-status")).to_contain_text(
        "Could not fetch models: the key is not accepted (invalid_api_key). The API key was rejected by OpenAI")
    await dialog.get_by_role("button", name="Cancel").click()
    assert wrong[-6:] not in await page.content()

    # The audit log pages with its cursor; a reload keeps the session (the token is in session storage).
    for n in range(25):
        status, _, _ = await api.call("POST", "/llm-providers", role="owner", json={
            "kind": "openai", "name": f"Spare {n:02d}", "model": "gpt-4.1-mini", "api_key": key()})
        assert status == 201
    await page.reload()
    rows = page.get_by_role("region", name="Audit log entries").locator("tbody tr")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("Spare 24")
    await page.get_by_role("button", name="Load older entries").click()
    await expect(rows).to_have_count(26)
    await expect(rows.last).to_contain_text("Main")
    await expect(page.get_by_role("button", name="Load older entries")).to_be_hidden()

    for name, content_type in (("app.js", "text/javascript"), ("views.js", "text/javascript"),
                               ("style.css", "text/css")):
        async with api.session.get(f"{api.base}/ui/{name}") as resp:
            assert resp.status == 200 and resp.content_type == content_type
    async with api.session.get(f"{api.base}/ui/__init__.py") as resp:
        assert resp.status == 404

    await page.get_by_role("button", name="Sign out").click()
    await expect(form).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('llmp.token')") is None
    assert not any(good in url or "token" in url for url in tab.requested)
    assert tab.problems() == []
