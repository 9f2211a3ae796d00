"""A chapter run as a researcher runs it: in JupyterLab started by ``make lab``'s launcher, in headless
Chromium, with the network blocked.

The launcher (``lab/start.py``, the command behind ``make lab``) serves a temporary copy of one
chapter's pair (``attention_computed``: quick, and it draws figures) on a free local port with a
token. Chromium (driven through the Chrome DevTools protocol with the helpers of ``test_browser``)
opens the chapter's MyST ``.md``, which must open as a notebook through jupytext, runs all cells,
and saves. The checks: the notebook ran on the project's kernel with no error output, in under the
chapter's 2-minute budget; it shows as many figures as its committed notebook; saving left the pair
in sync (``tests/check_pairs.py``) and the MyST source byte for byte as it was; no console error; no
request left 127.0.0.1.

No chapter is a stable home for the interactive views (``visualizing_attention`` is where they live,
and it changes with them), so a small scratch notebook, written here as MyST, draws several views in
one notebook: two ViT patch views and two head views. Each must draw an SVG with a non-empty box
(bertviz's head view draws it from its scripts); each patch view's script must have added its controls.

The server is stopped at the end whatever happens; the repository's chapters are never touched.
Skipped, with the reason, where no Chromium is installed (as the site's browser test). Timings are
printed (``pytest -s``): server start, JupyterLab usable, the chapter's run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import check_pairs
import nbformat
import pytest
from test_browser import ALLOWED_SCHEMES, DevTools, chromium_session, find_chromium, free_port, problems_in

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHAPTER = "attention_computed"
BUDGET_S = 120.0  # a chapter's budget (ARCHITECTURE.md, "A chapter")
LAB_START_TIMEOUT_S = 120.0

VIEWS_MD = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---

# Several views in one notebook

```{code-cell} ipython3
from sklearn.datasets import load_digits

from attention_study import interactive
from attention_study.models import load_role
from attention_study.tracing import trace

image = load_digits().images[0]
vit = trace(load_role("vision"), image)
display(interactive.patch_view(vit, image, layer=0))
display(interactive.patch_view(vit, image))
```

```{code-cell} ipython3
text = trace(load_role("bidirectional"), "The cat sat on the mat because it was tired.")
display(interactive.head_view(text))
display(interactive.head_view(text, layer=2, heads=[0, 1]))
```
"""

# Waits for JupyterLab and the document at `path` to be open as a notebook with an idle kernel.
OPEN_JS = """
(async (path, timeoutMs) => {
  const deadline = Date.now() + timeoutMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  while (!window.jupyterapp && Date.now() < deadline) { await sleep(100); }
  if (!window.jupyterapp) return JSON.stringify({error: 'JupyterLab did not start (window.jupyterapp missing)'});
  await jupyterapp.started; await jupyterapp.restored;
  const find = () => [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
  let panel = find();
  if (!panel) { await jupyterapp.commands.execute('docmanager:open', {path}); }
  while (!(panel = find()) && Date.now() < deadline) { await sleep(100); }
  if (!panel) return JSON.stringify({error: `${path} did not open`});
  await panel.context.ready;
  const notebook = panel.node.classList.contains('jp-NotebookPanel');
  if (!notebook) return JSON.stringify({error: `${path} opened, but not as a notebook`, classes: panel.node.className});
  jupyterapp.shell.activateById(panel.id);
  await panel.sessionContext.ready;
  let kernel = null;
  while (Date.now() < deadline) {
    kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (kernel && kernel.status === 'idle') break;
    await sleep(100);
  }
  const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(d => d.textContent.slice(0, 200));
  return JSON.stringify({
    kernel: kernel ? kernel.name : null, status: kernel ? kernel.status : null, dialogs,
    cells: panel.content.widgets.length,
  });
})
"""

# Runs every cell of the open notebook at `path`, saves it, then reports its outputs.
RUN_JS = """
(async (path, timeoutMs) => {
  const deadline = Date.now() + timeoutMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const panel = [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
  jupyterapp.shell.activateById(panel.id);
  await sleep(200);
  const started = performance.now();
  await jupyterapp.commands.execute('notebook:run-all-cells');
  const code = () => panel.content.widgets.filter(c => c.model.type === 'code');
  const kernel = () => panel.sessionContext.session.kernel;
  // Run-all stops at a cell that raises: wait for every cell, or for an error, and an idle kernel.
  const failed = () => code().some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
  while (Date.now() < deadline && (kernel().status !== 'idle' ||
         (code().some(c => c.model.executionCount === null) && !failed()))) {
    await sleep(200);
  }
  const seconds = (performance.now() - started) / 1000;
  await panel.context.save();
  const outputs = code().flatMap(c => c.model.outputs.toJSON());
  return JSON.stringify({
    seconds,
    unexecuted: code().filter(c => c.model.executionCount === null).length,
    errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
    stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
      .map(o => String(o.text).slice(0, 300)),
    pngOutputs: outputs.filter(o => o.data && o.data['image/png']).length,
    htmlOutputs: outputs.filter(o => o.data && o.data['text/html']).length,
    dirty: panel.context.model.dirty,
  });
})
"""

# Scrolls every HTML output of the notebook at `path` into view and reports what it drew; waits (up to
# `timeoutMs`) for views whose scripts draw them.
DRAWN_JS = """
(async (path, timeoutMs) => {
  const deadline = Date.now() + timeoutMs;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const panel = [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  const images = [...panel.node.querySelectorAll('.jp-RenderedImage img')];
  const html = [...panel.node.querySelectorAll('.jp-RenderedHTMLCommon.jp-OutputArea-output')];
  const drawn = [];
  for (const out of html) {
    let report;
    do {
      out.scrollIntoView({block: 'center'}); await frame(); await sleep(50);
      const svgs = [...out.querySelectorAll('svg')].map(s => s.getBoundingClientRect());
      report = {
        patchView: out.querySelector('.attention-patch-view') !== null,
        svg: svgs.filter(r => r.width > 0 && r.height > 0).length,
        controls: out.querySelectorAll('select, button').length,
      };
    } while (report.svg === 0 && Date.now() < deadline && await sleep(200) === undefined);
    drawn.push(report);
  }
  for (const img of images) { img.scrollIntoView(); await frame(); }
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  return JSON.stringify({
    images: images.length, imagesLoaded: images.filter(i => i.complete && i.naturalWidth > 0).length, drawn,
  });
})
"""

CONFIG_JS = "document.getElementById('jupyter-config-data').textContent"


def evaluate(browser: DevTools, function: str, *args: object, timeout_s: float = 60.0) -> dict:
    """Call the async JavaScript ``function`` with JSON ``args`` in the page; its JSON result, parsed."""
    expression = f"({function})({', '.join(json.dumps(a) for a in args)})"
    result = browser.call(
        "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
        timeout=int(timeout_s * 1000),
    )
    if "exceptionDetails" in result:
        raise AssertionError(f"script failed in JupyterLab: {result['exceptionDetails']}")
    return json.loads(result["result"]["value"])


def committed_figures(ipynb: Path) -> int:
    notebook = nbformat.read(ipynb, as_version=4)
    return sum(
        "image/png" in out.get("data", {})
        for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )


def stop_process(proc: subprocess.Popen, pid_of_server: int | None, token: str) -> None:
    """Stop the launcher (it stops its server); kill the server if it is still there."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if pid_of_server is None:
        return
    try:  # only our own server: its command line holds this test's token
        if token.encode() in Path(f"/proc/{pid_of_server}/cmdline").read_bytes():
            os.kill(pid_of_server, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


class Lab:
    """A JupyterLab started by the launcher; ``base`` is its URL, ``ready_s`` the seconds it took to answer."""

    def __init__(self, root: Path, state: Path, log: Path) -> None:
        self.port, self.token = free_port(), "study-lab-test-" + os.urandom(8).hex()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self.server_pid: int | None = None
        self.original_md = ""
        started = time.monotonic()
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(REPO / "lab" / "start.py"), "--no-browser", "--port", str(self.port),
                 "--root", str(root), "--state", str(state), "--token", self.token,
                 "--LabApp.expose_app_in_browser=True"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )
        self.started = started
        self.ready_s = float("nan")

    def wait_ready(self) -> None:
        """Wait for the launcher's "ready" line (it prints it once the server answers)."""
        log = self.log
        deadline = self.started + LAB_START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = log.read_text()
            match = re.search(r"server pid (\d+)\) is ready", text)
            if match:
                self.server_pid = int(match.group(1))
                break
            if self.proc.poll() is not None:
                raise AssertionError(f"the launcher exited ({self.proc.returncode}):\n{text[-3000:]}")
            time.sleep(0.2)
        else:
            raise AssertionError(f"JupyterLab not ready within {LAB_START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        self.ready_s = time.monotonic() - self.started

    def url(self, path: str) -> str:
        return f"{self.base}lab/tree/{path}?token={self.token}"

    def close(self) -> None:
        stop_process(self.proc, self.server_pid, self.token)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium found (install Debian's `chromium` package; .ci/run does): JupyterLab test skipped")
    pytest.importorskip("websocket", reason="websocket-client is not installed (see requirements.txt)")
    return found


@pytest.fixture(scope="module")
def lab(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: run `make setup`")
    work = tmp_path_factory.mktemp("lab")
    root = work / "chapters"
    root.mkdir()
    # The notebook first, then its source: the .md is the newer file, as after an edit.
    for suffix in (".ipynb", ".md"):
        shutil.copy(REPO / "chapters" / f"{CHAPTER}{suffix}", root / f"{CHAPTER}{suffix}")
    (root / "views.md").write_text(VIEWS_MD, encoding="utf8")
    original_md = (root / f"{CHAPTER}.md").read_text(encoding="utf8")
    server = Lab(root, work / "state", work / "lab.log")
    server.original_md = original_md
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()
        assert server.proc.poll() is not None, "the launcher did not stop"


def test_a_chapter_runs_in_jupyterlab_offline_with_its_views(lab: Lab, chromium: str) -> None:
    root = Path(lab.log).parent / "chapters"
    requests: list[str] = []
    with chromium_session(chromium) as browser:
        started = time.monotonic()
        browser.call("Page.navigate", url=lab.url(f"{CHAPTER}.md"))
        browser.wait_for("Page.loadEventFired", timeout=60)
        config = json.loads(
            browser.call("Runtime.evaluate", expression=CONFIG_JS, returnByValue=True)["result"]["value"]
        )
        opened = evaluate(browser, OPEN_JS, f"{CHAPTER}.md", 90_000, timeout_s=100)
        usable_s = time.monotonic() - started
        assert "error" not in opened, opened
        assert opened["kernel"] == "python3" and opened["status"] == "idle", (
            f"the chapter's kernel did not start: {opened} (the launcher's log: {lab.log})"
        )
        chapter = evaluate(browser, RUN_JS, f"{CHAPTER}.md", 240_000, timeout_s=250)
        chapter_drawn = evaluate(browser, DRAWN_JS, f"{CHAPTER}.md", 0)

        views_open = evaluate(browser, OPEN_JS, "views.md", 90_000, timeout_s=100)
        assert "error" not in views_open and views_open["status"] == "idle", views_open
        views = evaluate(browser, RUN_JS, "views.md", 240_000, timeout_s=250)
        views_drawn = evaluate(browser, DRAWN_JS, "views.md", 20_000, timeout_s=100)
        browser.call("Runtime.evaluate", expression="1")  # collects the events that arrived meanwhile
        events = list(browser.events)
        requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
        problems = problems_in(events, lab.base)

    print(
        f"\nJupyterLab: server ready {lab.ready_s:.1f} s after the launcher started; page usable (notebook "
        f"open, kernel idle) {usable_s:.1f} s after navigation; {CHAPTER} ran in {chapter['seconds']:.1f} s; "
        f"the views notebook in {views['seconds']:.1f} s"
    )
    # Offline: the configuration the launcher passes reached JupyterLab, and nothing left the machine.
    disabled = config.get("disabledExtensions", [])
    assert "@jupyterlab/apputils-extension:announcements" in disabled, disabled
    assert "@jupyterlab/extensionmanager-extension:plugin" in disabled, disabled
    assert config.get("news", {}).get("disabled") is True, config.get("news")
    outside = [u for u in requests if not u.startswith((lab.base, lab.base.replace("http", "ws"), *ALLOWED_SCHEMES))]
    assert requests, "no request recorded: the DevTools events were lost"
    assert not outside, f"requests that left the machine: {outside}"
    assert not problems, "JupyterLab in Chromium reported:\n" + "\n".join(problems)

    # The chapter: ran on the project's kernel, no error, within budget, with its figures.
    assert chapter["unexecuted"] == 0, chapter
    assert not chapter["errors"], f"{CHAPTER} raised in JupyterLab: {chapter['errors']}"
    assert chapter["seconds"] < BUDGET_S, f"{CHAPTER} took {chapter['seconds']:.0f} s (budget {BUDGET_S:.0f} s)"
    expected = committed_figures(REPO / "chapters" / f"{CHAPTER}.ipynb")
    assert chapter["pngOutputs"] == expected, f"{chapter['pngOutputs']} figures, the committed notebook has {expected}"
    assert chapter_drawn["imagesLoaded"] == expected, chapter_drawn
    # Saving from JupyterLab wrote both files of the pair, in sync, with outputs.
    assert not chapter["dirty"], "the chapter was not saved"
    assert check_pairs.drift(root / f"{CHAPTER}.md") is None, check_pairs.drift(root / f"{CHAPTER}.md")
    saved = (root / f"{CHAPTER}.md").read_text(encoding="utf8")
    assert saved == lab.original_md, "opening, running and saving a chapter rewrote its MyST source"

    # Several interactive views in one notebook, each drawn.
    assert views["unexecuted"] == 0 and not views["errors"], views
    drawn = views_drawn["drawn"]
    assert len(drawn) == 4 and sum(d["patchView"] for d in drawn) == 2, f"expected 4 views, 2 patch views: {drawn}"
    blank = [i for i, d in enumerate(drawn) if d["svg"] == 0]
    assert not blank, f"views (0-based, in order) that drew no SVG in JupyterLab: {blank} of {drawn}"
    inert = [i for i, d in enumerate(drawn) if d["patchView"] and not d["controls"]]
    assert not inert, f"patch views whose script did not run (no controls): {inert} of {drawn}"
