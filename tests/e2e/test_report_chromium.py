"""The QC report in a real headless Chromium, driven over the Chrome DevTools protocol.

Checks: the page loads from file:// with no console errors or dialogs, shows every case with its snapshot,
marking a case stores it in localStorage and survives a reload, the mark filter works, "Save marks"
downloads qc_marks.json, and `table --marks` reads that file back. Needs Debian's chromium
(`apt-get update && apt-get install -y chromium`); skipped when it is absent.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from neurospine.batch import BatchConfig, run_batch
from neurospine.batch.demo import make_demo_dataset
from neurospine.batch.report import write_report
from neurospine.batch.table import export_table

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
]

THUMB_WIDTHS = (
    "Promise.all(Array.from(document.querySelectorAll('img.thumb'))"
    ".map(i => i.decode().then(() => i.naturalWidth).catch(() => 0)))"
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get update && apt-get install -y chromium)"
)


class DevTools:
    """Minimal synchronous CDP client over tornado's websocket (tornado comes with dask distributed)."""

    def __init__(self, url: str) -> None:
        from tornado.websocket import websocket_connect

        async def connect() -> Any:
            return await websocket_connect(url, max_message_size=64 << 20)

        self.loop = asyncio.new_event_loop()
        self.ws = self.loop.run_until_complete(connect())
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, timeout: float) -> dict[str, Any]:
        async def read() -> Any:
            return await asyncio.wait_for(self.ws.read_message(), timeout)

        msg = self.loop.run_until_complete(read())
        if msg is None:
            raise ConnectionError("DevTools connection closed")
        return json.loads(msg)

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id

        async def write() -> None:
            await self.ws.write_message(json.dumps({"id": mid, "method": method, "params": params}))

        self.loop.run_until_complete(write())
        while True:
            msg = self._read(timeout)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == name:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._read(max(0.1, deadline - time.monotonic()))
            if msg.get("method") == name:
                return msg
            self.events.append(msg)
        raise TimeoutError(name)

    def js(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"JS error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self) -> None:
        self.ws.close()
        self.loop.close()


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        browser_url = None
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline and browser_url is None:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                browser_url = m.group(1)
        assert browser_url, "chromium did not start its DevTools endpoint"
        port = re.search(r":(\d+)/", browser_url).group(1)  # type: ignore[union-attr]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        b = DevTools(browser_url)
        p = DevTools(page_url)
        yield b, p
        p.close()
        b.close()
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    make_demo_dataset(ds, n_subjects=3, shape=(12, 64, 96), corrupt=1)
    evil = ds / "sub-004/anat"
    evil.mkdir(parents=True)
    nib.save(
        nib.Nifti1Image(np.random.default_rng(1).random((12, 40, 40)).astype(np.float32), np.eye(4)),
        str(evil / "sub-004_acq-sag_T2w.nii.gz"),
    )
    out = tmp_path / "out"
    run_batch(BatchConfig(ds, out, tasks=["info"], progress=False))
    # a hostile note already stored in the database must show as text, never run
    marks = tmp_path / "seed_marks.json"
    marks.write_text(
        json.dumps(
            {
                "marks": {
                    "sub-004/anat/sub-004_acq-sag_T2w/info": {
                        "mark": "artifact",
                        "note": "</script><script>alert(1)</script>",
                    }
                }
            }
        )
    )
    write_report(out, marks_file=marks)
    return out


def test_report_in_headless_chromium(browser, results: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b, p = browser
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    for domain in ("Runtime", "Log", "Page"):
        p.call(f"{domain}.enable")
    page = results / "derivatives/neurospine/qc_report.html"
    p.call("Page.navigate", url=page.as_uri())
    p.wait_event("Page.loadEventFired")

    assert p.js("document.title") == "neurospine QC report"
    keys = p.js("Array.from(document.querySelectorAll('tr.case')).map(tr => tr.dataset.key)")
    assert len(keys) == 4 and "sub-004/anat/sub-004_acq-sag_T2w/info" in keys
    statuses = p.js("Array.from(document.querySelectorAll('tr.case')).map(tr => tr.dataset.status)")
    assert sorted(statuses) == ["done", "done", "done", "failed"]
    images = p.js(THUMB_WIDTHS)
    assert len(images) == 3 and all(w > 0 for w in images)  # every done case shows its snapshot
    assert p.js("document.querySelector('tr.case[data-status=failed] .nopic').textContent") == "no picture (failed)"
    # click to enlarge, Escape to close
    assert p.js("document.getElementById('lightbox').classList.contains('hidden')")
    p.js("document.querySelector('img.thumb').click()")
    assert not p.js("document.getElementById('lightbox').classList.contains('hidden')")
    big = p.js("(() => { const i = document.getElementById('lightbox-img'); return i.decode().then(() => "
               "[i.naturalWidth, i.getBoundingClientRect().width, document.querySelector('img.thumb')"
               ".getBoundingClientRect().width]); })()")  # fmt: skip
    assert big[0] > 0 and big[1] > big[2]  # shown larger than the thumbnail
    p.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    assert p.js("document.getElementById('lightbox').classList.contains('hidden')")
    assert p.js("document.querySelector('tr.case[data-status=failed] .err').textContent").count("corrupt") == 1
    seeded = "sub-004/anat/sub-004_acq-sag_T2w/info"
    assert (
        p.js(f"document.querySelector('tr.case[data-key=\"{seeded}\"] input.note').value")
        == "</script><script>alert(1)</script>"
    )

    target = keys[0]
    sel = f"Array.from(document.querySelectorAll('tr.case')).find(tr => tr.dataset.key === {json.dumps(target)})"
    p.js(f"{sel}.querySelector('input[value=fail]').click()")
    p.js(
        f"(() => {{ const n = {sel}.querySelector('input.note'); n.value = 'cord <b>cut</b> off';"
        " n.dispatchEvent(new Event('input')); })()"
    )
    assert p.js(f"{sel}.classList.contains('mark-fail')")
    stored = json.loads(
        p.js("localStorage.getItem('neurospine-qc:' + document.getElementById('ns-report').dataset.reportId)")
    )
    assert stored[target]["mark"] == "fail" and stored[target]["note"] == "cord <b>cut</b> off"
    assert p.js("document.getElementById('count-fail').textContent") == "1"

    time.sleep(1.0)  # Chromium commits localStorage to its browser process asynchronously (batched)
    p.call("Page.reload")
    p.wait_event("Page.loadEventFired")
    assert p.js(f"{sel}.querySelector('input[value=fail]').checked")  # marks survive a reload
    assert p.js(f"document.querySelector('tr.case[data-key=\"{seeded}\"] input[value=artifact]').checked")
    p.js(
        "(() => { const s = document.getElementById('f-mark'); s.value = 'fail';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert p.js("document.getElementById('shown').textContent") == "1"
    p.js(
        "(() => { const s = document.getElementById('f-mark'); s.value = ''; s.dispatchEvent(new Event('change')); })()"
    )

    shot = p.call("Page.captureScreenshot", format="png")
    (tmp_path / "report_screenshot.png").write_bytes(base64.b64decode(shot["data"]))

    p.js("document.getElementById('save').click()")
    saved = downloads / "qc_marks.json"
    deadline = time.monotonic() + 15
    while not saved.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    exported = json.loads(saved.read_text())
    assert exported["format"] == "neurospine-qc-marks/1"
    assert exported["marks"][target] == {"mark": "fail", "note": "cord <b>cut</b> off"}
    assert exported["marks"][seeded]["mark"] == "artifact"

    rows = {
        r["case_key"]: r for r in csv.DictReader(export_table(results, tmp_path / "t.csv", marks_file=saved).open())
    }
    assert rows[target]["qc_mark"] == "fail" and rows[target]["qc_note"] == "cord <b>cut</b> off"

    # a copy of the page alone, far from the results, still shows every picture
    moved = tmp_path / "elsewhere" / "copy.html"
    moved.parent.mkdir()
    shutil.copy(page, moved)
    p.call("Page.navigate", url=moved.as_uri())
    p.wait_event("Page.loadEventFired")
    widths = p.js(THUMB_WIDTHS)
    assert len(widths) == 3 and all(w > 0 for w in widths)

    errors = [
        e
        for e in p.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    assert not [e for e in p.events if e.get("method") == "Page.javascriptDialogOpening"]  # no injected alert()


def test_single_run_qc_page_in_headless_chromium(browser, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`neurospine spine ... --qc DIR`: the page loads, shows the run's picture, enlarges it, no console errors."""
    from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

    from neurospine.cli.main import main
    from neurospine.io import save_volume

    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    img = save_volume(lumbar_phantom("LAS"), tmp_path / "sub-01_T2w.nii.gz")
    assert main(["spine", str(img), "--out", str(tmp_path / "out"), "--qc", str(tmp_path / "qc")]) == 0
    _, p = browser
    for domain in ("Runtime", "Log", "Page"):
        p.call(f"{domain}.enable")
    p.call("Page.navigate", url=(tmp_path / "qc" / "qc_report.html").as_uri())
    p.wait_event("Page.loadEventFired")
    assert p.js(THUMB_WIDTHS)[0] > 0
    p.js("document.querySelector('img.thumb').click()")
    assert not p.js("document.getElementById('lightbox').classList.contains('hidden')")
    assert p.js("document.querySelector('tr.case').dataset.task") == "spine"
    errors = [e for e in p.events if e.get("method") in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")]
    assert errors == []
