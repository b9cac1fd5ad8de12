"""What the real-Chromium tests share: Debian's /usr/bin/chromium driven by Playwright (no browser download),
the skip marker for a machine without it, a page on a box's web UI, screenshots and the login form.
Imported as `tests.browser_helpers` (the tests import shared code through the `tests.` path)."""

from __future__ import annotations

import io
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"  # screenshots for a person to look at
# axe-core, the accessibility checker: the npm package pinned in tests/a11y/package.json, installed by
# `make test` (npm ci). A context gets it with context.add_init_script(path=AXE): not a <script> on the page,
# which the box's CSP would refuse, and no network.
AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
FIND_VIOLATIONS = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id} (${v.impact}): ${v.help}: ` + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
}"""

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make debs)")


@asynccontextmanager
async def chromium_page(base_url: str, shots: Path, args: list[str] = ARGS, **context_options):
    """A page in headless Chromium on base_url; context_options (accept_downloads, viewport, ...) go to
    new_context, whose viewport is 1280x900 unless given."""
    shots.mkdir(parents=True, exist_ok=True)
    context_options.setdefault("viewport", {"width": 1280, "height": 900})
    async with chromium(args) as browser:
        context = await browser.new_context(ignore_https_errors=True, base_url=base_url, **context_options)
        page = await context.new_page()
        try:
            yield page
        finally:
            await context.close()


@asynccontextmanager
async def chromium(args: list[str] = ARGS):
    """A headless Chromium browser, for a suite that opens many contexts (one per role and width) in it
    rather than starting a browser for each."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def browser_page(box, shots: Path, args: list[str] = ARGS, **context_options):
    """The box's web UI on a free local port, and a Chromium page on it (see chromium_page)."""
    from webui.server import start_web

    runner = await start_web(box, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with chromium_page(f"https://127.0.0.1:{port}", shots, args, **context_options) as page:
            yield page
    finally:
        await runner.cleanup()


async def with_axe(context) -> None:
    """Put axe-core into every page the context opens (see AXE)."""
    assert AXE.exists(), "axe-core is not installed: run `make npm` (npm ci in tests/a11y; make test does)"
    await context.add_init_script(path=str(AXE))


async def layout_problems(page) -> tuple[int, list[str]]:
    """The page's width, and what is wrong with it: wider than the window (a phone scrolls sideways), and each
    serious or critical accessibility violation axe-core finds (the context needs with_axe)."""
    width, window = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    problems = [f"{width} px wide in a {window} px window"] if width > window else []
    return width, problems + await page.evaluate(FIND_VIOLATIONS)


def save_small(png: bytes, path: Path) -> None:
    """A screenshot for docs/ in 256 colours: a third of the bytes in git, text as sharp (pages are flat colour)."""
    from PIL import Image  # Pillow comes with fpdf2 (the transfer form)

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(path, optimize=True)


async def shot(page, shots: Path, name: str) -> None:
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def press(page, button: str, then) -> None:
    """Press the button with this text and wait for the page it leads to (then: a URL glob or pattern)."""
    await page.get_by_role("button", name=button).click()
    await page.wait_for_url(then)


async def login(page, name: str, password: str, lang: str = "nl") -> None:
    """Log in through the form, in Dutch or (lang "en", after /taal/en) in English."""
    await page.goto("/login")
    english = lang == "en"
    await page.get_by_label("User name" if english else "Gebruikersnaam").fill(name)
    await page.get_by_label("Password" if english else "Wachtwoord").fill(password)
    await press(page, "Log in" if english else "Inloggen", "**/")
