"""A real browser for the admin page: Debian's Chromium driven by Playwright (no downloaded browser).

`scripts/install-browser.sh` installs Chromium when /usr/bin/chromium is missing. Every page records the
JavaScript errors it raised and every URL it requested, so tests can assert there were none and that the
bearer token never appeared in a URL; screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("LLMP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/install-browser.sh")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A page plus what it did: uncaught errors, console errors and every URL it requested."""

    page: Page
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Uncaught JavaScript errors and Content Security Policy violations (4xx answers the page shows on
        purpose also log console errors, so those are not counted)."""
        return self.errors + [text for text in self.console_errors if "Content Security Policy" in text]

    async def shot(self, name: str, *, phone: bool = False, full_page: bool = True) -> Path:
        """Save a screenshot (at phone width when asked, then back to the laptop width); `full_page=False`
        for an open dialog, which is placed in the viewport."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if phone:
            await self.page.set_viewport_size(PHONE)
        await self.page.screenshot(path=str(path), full_page=full_page)
        if phone:
            await self.page.set_viewport_size(LAPTOP)
        return path


@pytest.fixture
def open_tab(browser: Browser):
    """open_tab() -> a Tab in a fresh browser context (own session storage), at laptop width."""

    async def open_() -> Tab:
        context = await browser.new_context(viewport=LAPTOP, locale="en-US")
        context.set_default_timeout(15_000)
        page = await context.new_page()
        tab = Tab(page)
        page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        page.on("console", lambda msg: tab.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda request: tab.requested.append(request.url))
        return tab

    return open_
