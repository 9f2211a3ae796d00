"""Every page of the built site in a real headless Chromium, with the network blocked.

The site is served from 127.0.0.1 by Python's http.server; Chromium resolves every other host name to
nothing and the test records every request the page makes (through the Chrome DevTools protocol), so a
page that reaches outside fails. For every page: it loads with no console error, no uncaught exception
and no failed request; where it has math, MathJax has typeset it (mjx-container elements, no TeX error);
where it has attention views, each draws an SVG with a non-empty box; every image has loaded. bertviz's
views (drawn by bertviz's own scripts, served by the site) are checked in detail on the visualizing chapter:
each draws, the head view shows every token and every line, and clicking a head's square toggles it.

Skipped, with the reason, where no Chromium is installed (Debian package ``chromium``; ``.ci/run`` installs
it). Set STUDY_SCREENSHOT_DIR to save a PNG screenshot of each page there.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
PAGE_TIMEOUT_S = 30.0
ALLOWED_SCHEMES = ("data:", "blob:", "about:", "chrome-extension:", "devtools:")

# Runs in the page after load: waits for MathJax and the images, then reports what the page shows.
PAGE_REPORT_JS = """
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const views = [...document.querySelectorAll('.attention-view')];
  return JSON.stringify({
    title: document.title,
    mathSource: document.querySelectorAll('.math').length,
    mathRendered: document.querySelectorAll('mjx-container').length,
    mathErrors: [...document.querySelectorAll('mjx-merror')]
      .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    unrenderedMath: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length,
    views: views.length,
    viewsDrawn: views.filter(v => { const s = v.querySelector('svg');
      if (!s) return false; const [w, h] = box(s); return w > 0 && h > 0; }).length,
    images: images.length,
    brokenImages: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  });
})()
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = PAGE_TIMEOUT_S) -> dict:
        for i, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def serve(site_dir: Path) -> Iterator[str]:
    """Serve ``site_dir`` on 127.0.0.1 (a free port); yields the site's base URL."""
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium_session(chromium: str) -> Iterator[DevTools]:
    """Headless Chromium with the network blocked and a fresh profile; yields a client of its page."""
    port = free_port()
    profile = tempfile.mkdtemp(prefix="study-chromium-")
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        # The network is blocked: every host name but 127.0.0.1 resolves to nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
        "--metrics-recording-only", "--window-size=1280,1000", "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = None
    try:
        page_ws = None
        deadline = time.monotonic() + 30
        while page_ws is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                    targets = json.load(resp)
                page_ws = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            except OSError:
                time.sleep(0.2)
        if page_ws is None:
            raise RuntimeError(f"Chromium ({chromium}) started but offered no page to drive within 30 s")
        client = DevTools(page_ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            client.call(f"{domain}.enable")
        yield client
    finally:
        if client is not None:
            client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server(site_dir: Path) -> Iterator[str]:
    with serve(site_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found (install Debian's `chromium` package; .ci/run does): browser test skipped")
    pytest.importorskip("websocket", reason="websocket-client is not installed (see requirements.txt)")
    with chromium_session(chromium) as client:
        yield client


def problems_in(events: list[dict], origin: str) -> list[str]:
    """Console errors, uncaught exceptions, failed or outside requests among DevTools events."""
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            found.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(origin) and not url.startswith(ALLOWED_SCHEMES):
                found.append(f"request outside the site: {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived" and params.get("response", {}).get("status", 200) >= 400:
            found.append(f"HTTP {params['response']['status']}: {params['response'].get('url')}")
    return found


REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)


def redirect_target(page: Path) -> str | None:
    """The target of a page that only redirects (Jupyter Book writes index.html so), else None."""
    match = REDIRECT.search(page.read_text(encoding="utf-8", errors="replace")[:2000])
    return match.group(1) if match else None


def site_pages(site_dir: Path) -> list[str]:
    """Every content page; redirect-only pages are left out (they navigate away while inspected)."""
    pages = [
        p.relative_to(site_dir).as_posix() for p in sorted(site_dir.rglob("*.html"))
        if not p.relative_to(site_dir).as_posix().startswith(("_static/", "_sources/", "downloads/"))
        and redirect_target(p) is None
    ]
    return pages


def test_redirect_pages_point_at_existing_pages(site_dir: Path) -> None:
    redirects = {p: redirect_target(p) for p in site_dir.glob("*.html") if redirect_target(p)}
    assert redirects, "expected the index.html redirect that Jupyter Book writes"
    for page, target in redirects.items():
        assert (page.parent / target).is_file(), f"{page.name} redirects to missing {target}"


def visit(browser: DevTools, url: str) -> tuple[dict, list[dict]]:
    """Load ``url``, wait for it to settle and return the page report and the DevTools events."""
    browser.events.clear()
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    result = browser.call(
        "Runtime.evaluate", expression=PAGE_REPORT_JS, awaitPromise=True, returnByValue=True,
        timeout=int(PAGE_TIMEOUT_S * 1000),
    )
    if "exceptionDetails" in result:
        raise AssertionError(f"{url}: the page report failed: {result['exceptionDetails']}")
    browser.call("Runtime.evaluate", expression="1")  # collects events that arrived meanwhile
    return json.loads(result["result"]["value"]), list(browser.events)


def screenshot_of(browser: DevTools, url: str, selector: str, out: Path) -> dict:
    """Load ``url``, scroll the first element matching ``selector`` to the top, save a PNG to ``out``."""
    report, _ = visit(browser, url)
    found = browser.call(
        "Runtime.evaluate", returnByValue=True,
        expression=f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                   "if (!e) return false; e.scrollIntoView({block: 'start'}); window.scrollBy(0, -90); "
                   "return true; })()",
    )["result"]["value"]
    if not found:
        raise ValueError(f"{url}: no element matches {selector!r}")
    time.sleep(0.3)
    shot = browser.call("Page.captureScreenshot", format="png")
    out.write_bytes(base64.b64decode(shot["data"]))
    return report


def screenshot(browser: DevTools, page: str) -> None:
    folder = os.environ.get("STUDY_SCREENSHOT_DIR")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", page.removesuffix(".html")) + ".png"
    (Path(folder) / name).write_bytes(base64.b64decode(shot["data"]))


def test_problem_detector_flags_console_errors_and_outside_requests() -> None:
    origin = "http://127.0.0.1:8000/"
    events = [
        {"method": "Runtime.consoleAPICalled", "params": {"type": "error", "args": [{"value": "boom"}]}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": [{"value": "fine"}]}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": "https://cdn.example.org/m.js"}}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": origin + "_static/a.js"}}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": "data:image/png;base64,AA"}}},
    ]
    assert problems_in(events, origin) == [
        "console.error: boom", "request outside the site: https://cdn.example.org/m.js",
    ]


def test_every_page_renders_offline_in_chromium(site_dir: Path, server: str, browser: DevTools) -> None:
    failures: list[str] = []
    reports: dict[str, dict] = {}
    for page in site_pages(site_dir):
        report, events = visit(browser, server + page)
        reports[page] = report
        screenshot(browser, page)
        issues = problems_in(events, server)
        if report["mathSource"] and not report["mathRendered"]:
            issues.append(f"{report['mathSource']} math elements but no MathJax output")
        if report["unrenderedMath"]:
            issues.append(f"{report['unrenderedMath']} math elements left untypeset")
        if report["mathErrors"]:
            issues.append(f"TeX errors: {report['mathErrors'][:5]}")
        if report["viewsDrawn"] != report["views"]:
            issues.append(f"{report['views'] - report['viewsDrawn']} of {report['views']} attention views drew no SVG")
        if report["brokenImages"]:
            issues.append(f"images that did not load: {report['brokenImages'][:5]}")
        failures += [f"{page}: {issue}" for issue in issues]
    assert not failures, "pages that do not render offline:\n" + "\n".join(failures)
    # The pages that must show math and views do show them (when they are part of the site).
    for page, report in reports.items():
        if re.search(r"chapters/(symmetry_|attention_computed)", page):
            assert report["mathRendered"] > 0, f"{page}: no typeset math"
        if re.search(r"chapters/visualizing_attention", page):
            assert report["viewsDrawn"] > 0, f"{page}: no attention view drawn"


# Runs in a page with bertviz views: waits until each has drawn, reports what each drew, then clicks the
# head view's first head square and reports which heads show lines before and after.
BERTVIZ_REPORT_JS = """
(async () => {
  const views = () => [...document.querySelectorAll('.bertviz-view')];
  const drawn = v => v.querySelector('svg') !== null;
  for (let i = 0; i < 200 && !views().every(drawn); i++) { await new Promise(r => setTimeout(r, 50)); }
  const report = views().map(v => ({
    kind: v.className, id: v.getAttribute('data-bertviz'), drawn: drawn(v),
    texts: [...v.querySelectorAll('svg text')].map(t => t.textContent),
    lines: v.querySelectorAll('svg line').length,
  }));
  const head = views().find(v => v.classList.contains('bertviz-head-view'));
  const shown = () => [...head.querySelectorAll('#attention .headAttention')]
    .map(g => [...g.querySelectorAll('line')].some(l => +l.getAttribute('stroke-opacity') > 0));
  let toggle = null;
  if (head) {
    const before = shown();
    const squares = head.querySelector('svg').lastElementChild.querySelectorAll('rect');
    squares[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));
    toggle = {squares: squares.length, before: before, after: shown()};
  }
  return JSON.stringify({report: report, toggle: toggle});
})()
"""
PARAMS = re.compile(r"const params = (\{\"attention\".*?\});")


def test_bertviz_views_draw_offline_and_respond(site_dir: Path, server: str, browser: DevTools) -> None:
    page = "chapters/visualizing_attention.html"
    if not (site_dir / page).is_file():
        pytest.skip(f"{page} is not part of this build")
    source = (site_dir / page).read_text(encoding="utf-8")
    params = {p["root_div_id"]: p for p in map(json.loads, PARAMS.findall(source))}
    assert "<!-- attention-study:bertviz-scripts -->" not in source  # replaced by the site's own copies
    cdn = [p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*") if p.suffix in {".html", ".js"}
           and "cdnjs.cloudflare.com" in p.read_text(encoding="utf-8", errors="replace")]
    assert not cdn, f"files naming bertviz's CDN: {cdn}"
    visit(browser, server + page)
    result = browser.call("Runtime.evaluate", expression=BERTVIZ_REPORT_JS, awaitPromise=True,
                          returnByValue=True, timeout=int(PAGE_TIMEOUT_S * 1000))
    browser.call("Runtime.evaluate", expression="1")
    assert "exceptionDetails" not in result, result
    found = json.loads(result["result"]["value"])
    issues = problems_in(browser.events, server)
    assert not issues, "\n".join(issues)
    kinds = [v["kind"] for v in found["report"]]
    for kind in ("bertviz-head-view", "bertviz-model-view", "bertviz-neuron-view"):
        assert any(kind in k for k in kinds), f"no {kind} on {page}: {kinds}"
    for view in found["report"]:
        assert view["drawn"], f"{view['kind']} drew no SVG"
        data = params[view["id"]]["attention"]
        data = data["all"] if isinstance(data, dict) else data[0]
        tokens, (n_heads, n) = data["left_text"], (len(data["attn"][0]), len(data["left_text"]))
        if "head-view" in view["kind"]:
            # a box per token on each side, a line per (head, query, key)
            assert view["texts"] == tokens * 2, view["texts"]
            assert view["lines"] == n_heads * n * n
    toggle = found["toggle"]
    assert toggle is not None and toggle["squares"] == len(toggle["before"])
    assert toggle["after"][0] != toggle["before"][0] and toggle["after"][1:] == toggle["before"][1:]


if __name__ == "__main__":
    # python tests/site/test_browser.py SITE_DIR PAGE SELECTOR OUT.png [PAGE SELECTOR OUT.png ...]
    import sys

    site, specs = Path(sys.argv[1]), sys.argv[2:]
    chromium = find_chromium()
    if chromium is None or len(specs) % 3:
        raise SystemExit("usage: test_browser.py SITE_DIR (PAGE SELECTOR OUT.png)...; needs chromium")
    with serve(site) as base, chromium_session(chromium) as client:
        for page, selector, out in zip(specs[::3], specs[1::3], specs[2::3], strict=True):
            report = screenshot_of(client, base + page, selector, Path(out))
            print(out, json.dumps({k: report[k] for k in ("mathRendered", "views", "viewsDrawn", "images")}))
