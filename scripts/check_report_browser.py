"""Render a tinyvla report.html in headless Chromium and check it: every <img> decoded (naturalWidth > 0),
no console error, no uncaught exception, no request leaving the page (everything is inline); save a screenshot.

    python scripts/check_report_browser.py runs/x/report.html --screenshot docs/report_screenshot.png
    python scripts/check_report_browser.py --run-dir runs/x      # (re)write runs/x/report.html first

Drives Debian's Chromium (`apt-get install -y chromium`) over the Chrome DevTools protocol with aiohttp's
WebSocket client (in tinyvla's `serve` and `dev` extras), so neither chromedriver nor selenium is needed.
Exit status: 0 pass, 1 a check failed, 2 Chromium (or aiohttp) is missing."""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", "--window-size=1280,900"]
MAX_SHOT_HEIGHT = 6000  # px of a long page kept in the screenshot

IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
    alt: i.alt, src: i.src.slice(0, 40), complete: i.complete, width: i.naturalWidth})))"""


def find_chromium(explicit: str = "") -> str | None:
    for name in ([explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal CDP client: commands by id over one browser WebSocket, events collected per session."""

    def __init__(self, ws):
        self.ws, self.ids, self.pending, self.events = ws, itertools.count(1), {}, []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def send(self, method: str, params: dict | None = None, session: str | None = None,
                   timeout: float = 30.0) -> dict:
        i = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_event(self, method: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e["method"] == method:
                    return e
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {method} within {timeout:.0f} s")


def problems_in(events: list[dict]) -> tuple[list[str], list[str]]:
    """(console errors and exceptions, requests that left the page) from the collected CDP events."""
    errors, requests = [], []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description", "")))
                                                                   for a in p.get("args", [])))
        elif e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif e["method"] == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("data:", "file:", "about:")):
                requests.append(url)
    return errors, requests


async def check(page: Path, chromium: str, screenshot: Path | None, timeout: float) -> dict:
    import aiohttp

    profile = Path(tempfile.mkdtemp(prefix="tinyvla-chromium-"))
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {proc.stderr.read().decode()[-2000:]}")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}{path}",
                                                                    max_msg_size=0) as ws:
            cdp = DevTools(ws)
            target = (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
            s = (await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await cdp.send(f"{domain}.enable", session=s)
            t0 = time.perf_counter()
            await cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=s)
            await cdp.wait_event("Page.loadEventFired", timeout)
            load_s = time.perf_counter() - t0
            await asyncio.sleep(0.3)  # let late console messages arrive
            value = (await cdp.send("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True},
                                    session=s))["result"]["value"]
            images = json.loads(value)
            if screenshot is not None:
                size = (await cdp.send("Page.getLayoutMetrics", session=s))["cssContentSize"]
                clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SHOT_HEIGHT),
                        "scale": 1}
                shot = await cdp.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport":
                                                                 True}, session=s, timeout=timeout)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors, requests = problems_in(cdp.events)
            try:
                await cdp.send("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError, ConnectionError):
                pass
            cdp.reader.cancel()
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return {"images": images, "errors": errors, "requests": requests, "load_s": load_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page", nargs="?", help="report.html to check (default RUN_DIR/report.html with --run-dir)")
    p.add_argument("--run-dir", default="", help="write RUN_DIR/report.html with tinyvla first, then check it")
    p.add_argument("--screenshot", default="", help="save a PNG of the rendered page here")
    p.add_argument("--chromium", default="", help="browser binary (default: chromium on PATH)")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.run_dir:
        from tinyvla.report import write_report

        page = write_report(args.run_dir, args.page or None)
    elif args.page:
        page = Path(args.page)
    else:
        p.error("give a report.html or --run-dir")
    if not page.is_file():
        print(f"{page} does not exist", file=sys.stderr)
        return 1
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("Chromium not found: apt-get install -y chromium (or pass --chromium PATH)", file=sys.stderr)
        return 2
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is needed to talk to Chromium: pip install 'tinyvla[serve]'", file=sys.stderr)
        return 2
    result = asyncio.run(check(page, chromium, Path(args.screenshot) if args.screenshot else None, args.timeout))
    broken = [i for i in result["images"] if not (i["complete"] and i["width"] > 0)]
    failures = ([f"image not loaded: {i['alt'] or i['src']}" for i in broken] + result["errors"]
                + [f"request left the page: {u}" for u in result["requests"]])
    if not result["images"]:
        failures.append("the page has no images")
    print(f"{page}: {len(result['images']) - len(broken)}/{len(result['images'])} images loaded, "
          f"{len(result['errors'])} console error(s), {len(result['requests'])} external request(s); "
          f"load {result['load_s']:.2f} s, total {time.perf_counter() - t0:.1f} s"
          + (f"; screenshot {args.screenshot}" if args.screenshot else ""))
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
