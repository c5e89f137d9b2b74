"""The dApp's browser tests: Debian's Chromium through Playwright, what a page did wrong, screenshots, figures.

- ``chromium_path()``: the browser Playwright drives (Debian's ``chromium`` package, installed by
  scripts/browser-tools.sh; ``BLENDR_CHROMIUM`` overrides). Playwright never downloads a browser here.
- ``PageLog``: console errors, uncaught exceptions, failed requests and HTTP errors of one page; a test asserts
  that none is unexpected (``assert_clean(*allowed_patterns)``).
- ``screenshot(page, out_dir, name)``: a full-page PNG kept as test output.
- Figures for the issue's measurements, written to JSON, never asserted as timers: the JS bundle's gzipped size
  (``js_gzip_bytes``), the time from navigation to the first view being interactive (``ready_ms``: the app sets
  ``document.body.dataset.ready = "1"`` after its first render), and the delay from a job event at the King to its
  text in the page (``TextWatch``: a MutationObserver stamps ``Date.now()`` when the text appears; compare with
  the event's ``ts_unix``, the King's clock, which is this machine's: ``event_delay_s``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import ConsoleMessage, Page, Request, Response, ViewportSize

REPO = Path(__file__).resolve().parents[2]
KING_STATIC = REPO / "king" / "static"
JS_GZ_BUDGET = 300 * 1000  # bytes: the goal for the page's JavaScript, gzipped (gzip -9)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    """Debian's Chromium binary (the launcher script /usr/bin/chromium adds flags of its own: use the binary)."""
    env = os.environ.get("BLENDR_CHROMIUM")
    if env:
        return env
    for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and os.access(p, os.X_OK):
            return p
    return None


@dataclass
class PageLog:
    """What went wrong in a page, as it happened: each entry a line naming the problem."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            loc = msg.location
            self.console_errors.append(f"console.error: {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def _failed(self, req: Request) -> None:
        self.failed_requests.append(f"{req.method} {req.url}: {req.failure}")

    def _response(self, resp: Response) -> None:
        if resp.status >= 400:
            self.failed_requests.append(f"{resp.request.method} {resp.url} -> HTTP {resp.status}")

    def problems(self) -> list[str]:
        return [*self.page_errors, *self.console_errors, *self.failed_requests]

    def unexpected(self, *allow: str) -> list[str]:
        """The problems no pattern of ``allow`` (regular expressions, searched) accounts for."""
        pats = [re.compile(a) for a in allow]
        return [p for p in self.problems() if not any(r.search(p) for r in pats)]

    def assert_clean(self, *allow: str) -> None:
        """Fails listing every problem that no pattern of ``allow`` accounts for."""
        bad = self.unexpected(*allow)
        assert not bad, "the page had problems:\n  " + "\n  ".join(bad)


async def screenshot(page: Page, out_dir: Path, name: str) -> Path:
    """A full-page screenshot ``out_dir/NN-name.png`` (NN: its order in the test)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(list(out_dir.glob("*.png"))) + 1
    path = out_dir / f"{n:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


# ---------------------------------------------------------------------------------------------- figures
READY_INIT_SCRIPT = """
(() => {
  const mark = () => {
    if (window.__blendrReadyAt === undefined && document.body && document.body.dataset.ready === "1") {
      window.__blendrReadyAt = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(mark);
  observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"] });
})();
"""


async def ready_ms(page: Page, timeout_s: float = 30) -> float:
    """Milliseconds from the navigation's start to the app marking its first view ready (``body[data-ready="1"]``),
    stamped in the page by ``READY_INIT_SCRIPT`` (the page fixture adds it). Call after ``page.goto``."""
    await page.wait_for_function("() => window.__blendrReadyAt !== undefined", timeout=timeout_s * 1000)
    return float(await page.evaluate("() => window.__blendrReadyAt"))


class TextWatch:
    """Stamps (``Date.now()``, in the page) the moment ``text`` first appears in the page's text."""

    def __init__(self, page: Page, text: str) -> None:
        self.page = page
        self.text = text

    async def start(self) -> TextWatch:
        await self.page.evaluate("""(text) => {
          const seen = (window.__blendrSeen = window.__blendrSeen || {});
          const has = () => !!document.body && document.body.textContent.includes(text);
          if (has()) { seen[text] = Date.now(); return; }
          const obs = new MutationObserver(() => {
            if (seen[text] === undefined && has()) { seen[text] = Date.now(); obs.disconnect(); }
          });
          obs.observe(document, { subtree: true, childList: true, characterData: true });
        }""", self.text)
        return self

    async def seen_at(self, timeout_s: float = 60) -> float:
        """The Unix time (s) the text appeared; waits for it up to ``timeout_s``."""
        await self.page.wait_for_function("(t) => (window.__blendrSeen || {})[t] !== undefined", arg=self.text,
                                          timeout=timeout_s * 1000)
        return float(await self.page.evaluate("(t) => window.__blendrSeen[t]", self.text)) / 1000


def event_delay_s(seen_at: float, events: Iterable[Any], text: str) -> float:
    """Seconds from the King's stamp (``ts``, JobEvent.ts_unix) of the first of ``events`` (the SDK's ``Event``s, e.g.
    from tests/e2e/net.py's ``follow``) whose message holds ``text`` to ``seen_at`` (``TextWatch.seen_at``)."""
    evs = list(events)
    for ev in evs:
        if text in ev.message:
            return seen_at - float(ev.ts)
    raise AssertionError(f"no job event with {text!r} among {len(evs)} events")


def js_gzip_bytes(static_dir: Path = KING_STATIC) -> dict[str, int]:
    """Each built JS file's size gzipped at level 9 (as ``gzip -9``), by name, and their ``total``."""
    sizes = {p.name: len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0))
             for p in sorted((static_dir / "assets").glob("*.js"))}
    return {**sizes, "total": sum(sizes.values())}


@dataclass
class Figures:
    """The issue's measurements of one test, written to ``path`` (JSON) and printed when the test ends."""

    path: Path
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, name: str, value: float, unit: str, **notes: Any) -> None:
        self.values[name] = {"value": value, "unit": unit, **notes}

    def write(self) -> Path | None:
        if not self.values:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")
        for name, v in sorted(self.values.items()):
            print(f"figure {name}: {v['value']} {v['unit']}")
        return self.path
