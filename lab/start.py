"""Open the book's chapters as notebooks in JupyterLab: the command behind ``make lab``.

    .venv/bin/python lab/start.py [--port 8888] [--no-browser] [--Class.trait=value ...] [chapters/<name>.md]

It starts JupyterLab from the project's environment (the interpreter running this script), with
that environment's ``python3`` kernel, on 127.0.0.1 with a fresh token, at the chapters folder, and
prints the URL once the server answers. The configuration is this folder (``lab/``), on
``JUPYTER_CONFIG_PATH``; ``JUPYTER_CONFIG_DIR`` is a folder of the project's own, so the reader's
``~/.jupyter`` is neither read nor written:

- ``settings/overrides.json``: Markdown files open as notebooks through jupytext (``Jupytext
  Notebook``), so a chapter's MyST source opens as a notebook; saving writes both files of its pair
  (the chapters' ``formats: ipynb,md:myst``);
- ``jupyter_lab_config.json`` and ``labconfig/page_config.json``: nothing is fetched from the
  internet (no news feed, no update check, no extension manager querying PyPI).

JupyterLab's own state (settings changed in the UI, workspaces, its config folder) goes to
``.venv/lab/``. The models are the offline profile unless ``STUDY_MODELS`` says otherwise, with the
model hubs offline, as in the Makefile. A taken port is replaced by a free one, and the message says
which; a missing JupyterLab or kernel is an error that says to run ``make setup``, missing npm
copies of bertviz's scripts a warning that says to run ``make site-assets``. Options of the
form ``--Class.trait=value`` go to JupyterLab unchanged. Ctrl-C (or SIGTERM) stops the server and
its kernels.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_PORT = 8888
KERNEL = "python3"  # the kernelspec named by every chapter's metadata
READY_TIMEOUT_S = 120.0
SETUP_HINT = "run `make setup` (it installs the pinned requirements.txt into .venv)"


class LabError(RuntimeError):
    """Something this launcher cannot start JupyterLab without; the message says what to do."""


def check_environment() -> None:
    """JupyterLab, jupytext and the kernel are installed in this interpreter's environment."""
    missing = [name for name in ("jupyterlab", "jupytext", "ipykernel") if importlib.util.find_spec(name) is None]
    if missing:
        raise LabError(f"{', '.join(missing)} not installed in {sys.prefix}: {SETUP_HINT}")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise LabError(f"no Jupyter kernel {KERNEL!r} in {sys.prefix}: {SETUP_HINT}") from None
    program = spec.argv[0] if spec.argv else ""
    # "python" in a kernelspec means the server's own interpreter (jupyter_client substitutes it).
    if program not in {"python", "python3", f"python3.{sys.version_info[1]}"} and Path(program).resolve() != Path(
        sys.executable
    ).resolve():
        raise LabError(
            f"the {KERNEL!r} kernel found ({spec.resource_dir}) runs {program}, not this project's "
            f"{sys.executable}: remove that kernelspec or {SETUP_HINT}"
        )


def view_scripts_note() -> str | None:
    """A warning when the site's npm packages are missing: bertviz's views inline their copies of
    require.js, d3 and jQuery (``make lab`` installs them first, through ``make site-assets``)."""
    if (REPO / "site" / "node_modules" / ".package-lock.json").is_file():
        return None
    return (
        "the site's npm packages are not installed, so bertviz's views will not draw in notebooks "
        "(they inline those copies of require.js, d3 and jQuery): run `make site-assets`"
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def choose_port(wanted: int) -> tuple[int, str | None]:
    """``wanted`` when it is free, else a free port picked by the system, with a note saying so."""
    if port_is_free(wanted):
        return wanted, None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port, f"port {wanted} is taken (another JupyterLab?): using port {port} instead"


def lab_paths(root: Path, files: list[str]) -> list[str]:
    """``files`` (paths from the current folder) as paths under ``root``; an error names a bad one."""
    found = []
    for name in files:
        path = Path(name).resolve()
        if not path.is_file():
            chapters = sorted(p.name for p in root.glob("*.md"))
            raise LabError(f"{name}: no such file; the chapters are {', '.join(chapters)}")
        try:
            found.append(path.relative_to(root).as_posix())
        except ValueError:
            raise LabError(f"{name} is outside {root}, the folder JupyterLab serves") from None
    return found


def lab_environment(state: Path) -> dict[str, str]:
    config_dir = state / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    # jupyter_core copies an old ~/.ipython's notebook config into JUPYTER_CONFIG_DIR unless this
    # marker exists: the reader's old configuration stays out of the book's JupyterLab.
    (config_dir / "migrated").touch()
    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("JUPYTER_CONFIG_PATH")])])
    env["JUPYTERLAB_SETTINGS_DIR"] = str(state / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(state / "workspaces")
    env.setdefault("STUDY_MODELS", "offline")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        env.setdefault(name, "1")
    return env


def lab_command(
    root: Path, port: int, token: str, browser: bool, opened: list[str], extra: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={browser}",
        f"--LabApp.app_settings_dir={HERE / 'settings'}",
        # Containers and CI often run as root; JupyterLab refuses that unless told.
        *(["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        *extra,
        *(str(root / name) for name in opened),
    ]


def wait_until_ready(proc: subprocess.Popen, base: str, token: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Return once the server answers an authenticated request; raise if it exits or never answers."""
    request = urllib.request.Request(base + "api/status", headers={"Authorization": f"token {token}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"JupyterLab exited with status {proc.returncode} before it was ready (its log is above)")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise LabError(f"JupyterLab did not answer at {base} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server (it shuts its kernels down on SIGTERM); kill it if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="a chapter (or another file under --root) to open")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="tried first (default: 8888)")
    parser.add_argument("--root", type=Path, default=REPO / "chapters", help="the folder served (default: chapters)")
    parser.add_argument("--token", default=None, help="the access token (default: a fresh random one)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    parser.add_argument(
        "--state", type=Path, default=REPO / ".venv" / "lab", help="JupyterLab's settings and workspaces"
    )
    args, extra = parser.parse_known_args(argv)
    unknown = [arg for arg in extra if not arg.startswith("--") or "=" not in arg or "." not in arg.split("=")[0]]
    if unknown:
        parser.error(f"unknown arguments {unknown} (JupyterLab options are passed on as --Class.trait=value)")
    args.extra = tuple(extra)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        check_environment()
        root = args.root.resolve()
        opened = lab_paths(root, [args.file] if args.file else [])
        port, note = choose_port(args.port)
    except LabError as err:
        print(f"make lab: {err}", file=sys.stderr)
        return 2
    for line in (note, view_scripts_note()):
        if line:
            print(f"make lab: {line}", flush=True)
    token = args.token or secrets.token_hex(24)
    base = f"http://127.0.0.1:{port}/"
    url = base + "lab" + ("/tree/" + urllib.parse.quote(opened[0]) if opened else "") + f"?token={token}"

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    # Its own session: Ctrl-C reaches this script only, which then stops the server cleanly
    # (JupyterLab would otherwise stop to ask "Shutdown this Jupyter server (y/[n])?").
    proc = subprocess.Popen(
        lab_command(root, port, token, not args.no_browser, opened, args.extra),
        env=lab_environment(args.state.resolve()), start_new_session=True,
    )
    try:
        wait_until_ready(proc, base, token)
        print(
            f"\nJupyterLab (server pid {proc.pid}) is ready after {time.monotonic() - started:.1f} s, serving {root}:\n"
            f"    {url}\n"
            "Chapters (.md) open as notebooks; saving one updates its paired .ipynb. Ctrl-C stops the server.\n",
            flush=True,
        )
        return proc.wait()
    except LabError as err:
        print(f"make lab: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make lab: stopping JupyterLab", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan the server
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
