"""Issue 16: bertviz's model view (offline) against the book's former model view, side by side.

One sentence through MiniLM (the offline profile's encoder, 6 layers x 12 heads) is drawn by both:

- bertviz's ``model_view`` as the library now makes it (``attention_study.interactive.model_view``),
  on a page that loads d3, jQuery, require.js and ``bertviz_modules.js`` from the same folder, as the
  website does;
- the former view of the book, from the frozen copy in ``benchmarks/frozen_views`` (kept only here).

Rows: the page weight (bytes the browser downloads: the page, plus the scripts for bertviz) and the time
to first draw in headless Chromium (navigation start to the first animation frame after the view's
drawing is in the DOM; cache disabled, network blocked, medians of ``REPEATS`` loads, alternated).
``baseline`` is the former view, ``ours`` bertviz's; no target (reported).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SENTENCE = "The lawyer questioned the witness because she wanted the truth."
REPEATS = 7

# Records, in the page, when the view's drawing first exists: the next animation frame after the DOM
# holds it. Placed first in <head>, so it watches the page from its start.
WATCH = """<script>
window.__drawn = null;
(function () {
  function ready() { var s = document.querySelector(%s); return s && s.querySelector(%s); }
  function check() {
    if (window.__drawn === null && ready()) {
      window.__drawn = -1;
      requestAnimationFrame(function () { window.__drawn = performance.now(); });
    }
  }
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
  check();
}());
</script>"""


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pages(folder: Path) -> dict[str, int]:
    """Write the two pages and the scripts into ``folder``; returns their sizes in bytes (``old.html``,
    ``bertviz.html``, ``scripts``: d3, jQuery, require.js and bertviz_modules.js together)."""
    from attention_study import interactive
    from attention_study.models import load_role
    from attention_study.tracing import trace

    frozen = _load("frozen_model_view", HERE / "frozen_views" / "old_model_view.py")
    t = trace(load_role("bidirectional", profile="offline"), SENTENCE)
    old = frozen.old_model_view(t.attentions.double().numpy(), list(t.tokens))
    new = interactive.model_view(t).html
    scripts = interactive.bertviz_script_files()
    for name, source in scripts.items():
        shutil.copy2(source, folder / name)
    tags = "".join(f'<script src="{name}"></script>' for name in scripts)
    head = "<!DOCTYPE html><html><head><meta charset='utf-8'>"
    documents = {
        "old.html": head + WATCH % (json.dumps("#old-model-view svg.attention-grid"), json.dumps("image"))
        + f"</head><body>{old}</body></html>",
        "bertviz.html": head + WATCH % (json.dumps(".bertviz-model-view svg"), json.dumps("rect"))
        + f"</head><body>{tags}{new}</body></html>",
    }
    sizes = {}
    for name, text in documents.items():
        (folder / name).write_text(text, encoding="utf-8")
        sizes[name] = len(text.encode("utf-8"))
    sizes["scripts"] = sum(path.stat().st_size for path in scripts.values())
    return sizes


def draw_seconds(browser: object, url: str) -> float:
    browser.events.clear()  # type: ignore[attr-defined]
    browser.call("Page.navigate", url=url)  # type: ignore[attr-defined]
    browser.wait_for("Page.loadEventFired")  # type: ignore[attr-defined]
    result = browser.call(  # type: ignore[attr-defined]
        "Runtime.evaluate", awaitPromise=True, returnByValue=True,
        expression="(async () => { for (let i = 0; i < 400 && !(window.__drawn > 0); i++) "
                   "await new Promise(r => setTimeout(r, 25)); return window.__drawn; })()",
    )
    value = result["result"].get("value")
    if not value or value <= 0:
        raise RuntimeError(f"{url}: the view did not draw within 10 s")
    return value / 1000.0


def rows() -> list[dict]:
    browser_module = _load("site_browser", HERE.parent / "tests" / "site" / "test_browser.py")
    chromium = browser_module.find_chromium()
    with tempfile.TemporaryDirectory(prefix="study-bench-bertviz-") as tmp:
        folder = Path(tmp)
        written = pages(folder)
        old_bytes, page_bytes = written["old.html"], written["bertviz.html"]
        out = [{
            "name": f"model view page weight, MiniLM 6x12, one sentence: former {old_bytes} B; bertviz "
                    f"{page_bytes + written['scripts']} B = page {page_bytes} B + scripts {written['scripts']} B "
                    "(d3, jQuery, require.js: cached once per site)",
            "baseline_s": None, "ours_s": None, "ratio": None, "target": "reported", "met": True,
        }]
        if chromium is None:
            out.append({"name": "model view time to first draw: skipped (no Chromium)", "baseline_s": None,
                        "ours_s": None, "ratio": None, "target": "reported", "met": True})
            return out
        old_s, new_s = [], []
        with browser_module.serve(folder) as base, browser_module.chromium_session(chromium) as browser:
            browser.call("Network.setCacheDisabled", cacheDisabled=True)
            draw_seconds(browser, base + "old.html")  # warm-up of the browser itself
            for _ in range(REPEATS):
                old_s.append(draw_seconds(browser, base + "old.html"))
                new_s.append(draw_seconds(browser, base + "bertviz.html"))
        old_med, new_med = statistics.median(old_s), statistics.median(new_s)
        out.append({
            "name": "model view time to first draw in headless Chromium (baseline: former view; ours: bertviz)",
            "baseline_s": old_med, "ours_s": new_med, "ratio": old_med / new_med,
            "target": "reported", "met": True,
        })
        return out


if __name__ == "__main__":
    for row in rows():
        print(row)
