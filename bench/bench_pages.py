"""Web UI page loads (/opnames, /opnames/{id}, /logboek) at 100 000 recordings and 1 000 000 audit entries while 10 cameras offload: p95 < 300 ms.

Setup, outside the timing: a box whose catalog gets --pages-recordings recordings (bench_opnames.build: 40
cameras, 90 officers in 6 teams, 1 % held; no blobs, the pages never read footage) and --pages-audit audit
entries appended straight into audit_log, each hashed onto the chain as appliance.audit.record would (the
chain verifies; a 'view', 'ingest', 'login', 'hold_add' mix over the recordings). The term is set to ten
years so that the retention sweep of `kluis serve` deletes nothing during the run. Then `kluis serve` runs
on it, --pages-cameras `kluis camera-sim` processes (bench_offload's simulators) are paired, and a feeder
keeps every camera holding a recording of --pages-offload-size, so that the box offloads all the time.

Timed, per round (--repeats), for each page, --pages-samples times, taking turns between the pages:
- server time: a GET over a kept-alive HTTPS connection (Python's http.client, the privacy officer's
  session cookie) from the request to the last byte of the body;
- Chromium: `page.goto` in headless Chromium (Debian's /usr/bin/chromium through Playwright), the load
  event as Navigation Timing gives it (loadEventEnd, from the start of the navigation).
Each round gives the p95 of its samples; the row shows the median of the rounds' p95 with their range.
Baseline in the same rounds: the user's own account page (/account), which reads one user row (context for the ratio). Also shown:
what the box offloaded while the pages were measured, and the share of samples taken while cameras still
held recordings for it. Target (issue 18): every page's p95 < 300 ms, server time and load event alike.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import benchlib
from bench_offload import Sim, set_dock_config, start_serve, wait_log
from benchlib import MB, fmt_size, progress, ratio, result, stop

NAME = "pages"
ADMIN_PASSWORD = "bench-password"  # bench_opnames.build's keeper
USER, PASSWORD = "fg", "bench privacy officer password"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DETAIL = 100  # the recording whose page is measured: held (every 100th is), with views in the log
TERM_DAYS = 3650


def add_arguments(group) -> None:
    group.add_argument("--pages-recordings", type=int, default=100_000, metavar="N",
                       help="pages: recordings in the catalog (default 100000)")
    group.add_argument("--pages-audit", type=int, default=1_000_000, metavar="N",
                       help="pages: audit log entries (default 1000000)")
    group.add_argument("--pages-samples", type=int, default=20, metavar="N",
                       help="pages: loads of each page per round and per client (default 20)")
    group.add_argument("--pages-cameras", type=int, default=10, metavar="N",
                       help="pages: cameras offloading meanwhile (default 10)")
    group.add_argument("--pages-offload-size", type=benchlib.parse_size, default=benchlib.parse_size("256M"),
                       metavar="SIZE", help="pages: size of each recording the cameras offload (default 256M)")


# --- the box -------------------------------------------------------------------------------------------

def build(data: Path, recordings: int, entries: int) -> str:
    """A box with `recordings` recordings, a privacy officer and `entries` audit entries; returns the id of
    the recording whose page is measured."""
    import bench_opnames

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance import roles, users
    from appliance.box import Box

    bench_opnames.build(data, recordings)
    with Box(data) as box:
        users.add_user(box, "admin", USER, roles.PRIVACY_OFFICER, PASSWORD,
                       identity=box.unlock("admin", ADMIN_PASSWORD))
    append_audit(data / "catalog.db", entries, recordings)
    path = data / "kluis.toml"
    path.write_text(path.read_text().replace("[retention]\n", f"[retention]\ndefault_days = {TERM_DAYS}\n", 1))
    set_dock_config(data)
    return f"{min(DETAIL, recordings - 1):016x}"


def append_audit(catalog: Path, total: int, recordings: int) -> None:
    """Append `total` entries after the log's head, hashed onto its chain (appliance.audit.entry_hash), in
    time order over the span of the recordings. One transaction: the triggers forbid only changes."""
    from appliance.audit import COLUMNS, GENESIS, entry_hash
    from appliance.canonical import canonical
    from appliance.clock import to_iso

    conn = sqlite3.connect(catalog, isolation_level=None)
    head = conn.execute("SELECT seq, hash, time FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    end = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)  # bench_opnames.build's "now"
    span = timedelta(minutes=7 * max(recordings, 1))
    begin = end - span
    insert = f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    conn.execute("BEGIN")
    batch = []
    entry: dict[str, Any]
    for i in range(total):
        at = to_iso(begin + span * (i / max(total, 1)))
        # the recording this entry is about: spread over all, and the measured one viewed now and then
        rec = DETAIL if i % 20_000 == 7 else (i * 7919) % max(recordings, 1)
        rid = f"{rec:016x}"
        kind = i % 10
        if kind < 6:
            entry = {"actor": ("fg", "tl", f"officer {i % 90}")[kind % 3], "action": "view", "recording_id": rid,
                     "purpose": ("complaint", "police_report", "training")[kind % 3], "case_ref": f"K-{i % 5000}",
                     "client": f"10.0.{i % 7}.{i % 250}", "details": {"range": f"0-{i % 1000 * 1024}"}}
        elif kind < 8:
            entry = {"actor": "system", "action": "ingest", "recording_id": rid, "purpose": None, "case_ref": None,
                     "client": None, "details": {"camera": "CAM%03d" % (rec % 40), "source": "dock"}}
        elif kind == 8:
            entry = {"actor": ("fg", "tl", "admin")[i % 3], "action": "login", "recording_id": None,
                     "purpose": None, "case_ref": None, "client": f"10.0.{i % 7}.{i % 250}", "details": None}
        else:
            entry = {"actor": "fg", "action": "hold_add", "recording_id": rid, "purpose": "complaint",
                     "case_ref": f"K-{i % 5000}", "client": "10.0.0.5",
                     "details": {"review_at": at, "until": None}}
        seq += 1
        entry["details"] = canonical(entry["details"]).decode() if entry["details"] is not None else None
        entry.update(seq=seq, time=at, prev_hash=prev)
        prev = entry["hash"] = entry_hash(entry)
        batch.append([entry[name] for name in COLUMNS])
        if len(batch) == 50_000:
            conn.executemany(insert, batch)
            batch.clear()
            progress(f"pages: {seq} audit entries")
    conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


# --- the cameras ---------------------------------------------------------------------------------------

class Feeder(threading.Thread):
    """Keeps every camera holding a recording for the box (a new one as soon as the box has taken the last),
    so that the offload runs all the time the pages are measured."""

    def __init__(self, kluis: list[str], sims: list[Sim], size: int):
        super().__init__(daemon=True)
        self.kluis, self.sims, self.filler_mb = kluis, sims, max(0.0, size / 2**20 - 0.2)
        self.done = threading.Event()
        self.recorded = 0

    def pending(self) -> int:
        """Cameras holding a recording the box has not taken yet."""
        return sum(1 for sim in self.sims if any((sim.state / "recordings").glob("*.json")))

    def run(self) -> None:
        while not self.done.is_set():
            for sim in self.sims:
                if not any((sim.state / "recordings").glob("*.json")) and not self.done.is_set():
                    subprocess.run([*self.kluis, "camera-sim", "record", "--state", str(sim.state), "--seconds", "1",
                                    "--filler-mb", str(self.filler_mb), "--wait", "120"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                    self.recorded += 1
            self.done.wait(0.2)


def offloaded(data: Path, after: int) -> tuple[int, int]:
    """(recordings, bytes) the box committed after rowid `after` (the last of the built catalog)."""
    conn = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM recordings WHERE rowid > ?",
                            [after]).fetchone()
    finally:
        conn.close()


# --- the clients ---------------------------------------------------------------------------------------

class Server:
    """GETs over one kept-alive HTTPS connection with the session's cookies: request to last byte."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the box's self-signed certificate, on loopback
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.context, timeout=60)

    def get(self, path: str) -> float:
        began = time.perf_counter()
        try:
            self.conn.request("GET", path, headers={"Cookie": self.cookie})
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):  # the server closed the kept connection: once more
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
            began = time.perf_counter()
            self.conn.request("GET", path, headers={"Cookie": self.cookie})
            response = self.conn.getresponse()
        body = response.read()
        ms = (time.perf_counter() - began) * 1000
        if response.status != 200 or b"<html" not in body[:200]:
            raise RuntimeError(f"GET {path}: {response.status}")
        return ms


def load_event_ms(page, path: str) -> float:
    """Chromium's load event of a navigation to `path`, from the navigation's start (Navigation Timing)."""
    response = page.goto(path, wait_until="load")
    if response is None or response.status != 200:
        raise RuntimeError(f"Chromium: {path}: {response.status if response else 'no response'}")
    timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
    return float(json.loads(timing)["loadEventEnd"])


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- the run -------------------------------------------------------------------------------------------

def run(args) -> list[dict]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (Debian package chromium, `make debs`)")
    from playwright.sync_api import sync_playwright

    kluis = benchlib.kluis_command()
    data = args.work / "data"
    progress(f"pages: building a box with {args.pages_recordings} recordings and {args.pages_audit} audit entries")
    began = time.perf_counter()
    detail = build(data, args.pages_recordings, args.pages_audit)
    progress(f"pages: built in {time.perf_counter() - began:.0f} s")
    built = offloaded(data, 0)[0]  # rowids 1..built are the catalog's own
    password = args.work / "admin-password.txt"
    password.write_text(ADMIN_PASSWORD + "\n")
    log = args.work / "serve.log"
    n = args.pages_cameras
    sims = [Sim(kluis, args.work / f"cam{i}", f"PAGES-{i:02d}") for i in range(n)]
    serve = feeder = None
    try:
        serve = start_serve(kluis, data, log)
        wait_log(log, "Kluis is serving", timeout=300)
        listening = re.search(r"web UI: listening on [^\s,]*:(\d+)", log.read_text())
        if listening is None:
            raise RuntimeError(f"kluis serve named no web UI address; see {log}")
        port = int(listening.group(1))
        for sim in sims:
            benchlib.run_child([*kluis, "cameras", "pair", "--data", data, sim.serial, sim.code,
                                "--pre-record", "0", "--post-record", "0", "--password-file", password])
        feeder = Feeder(kluis, sims, args.pages_offload_size)
        feeder.start()
        pages = {"/opnames": "/opnames", "/opnames/{id}": f"/opnames/{detail}", "/logboek": "/logboek",
                 "account page (baseline)": "/account"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(ignore_https_errors=True, base_url=f"https://127.0.0.1:{port}",
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto("/login")
            page.get_by_label("Gebruikersnaam").fill(USER)
            page.get_by_label("Wachtwoord").fill(PASSWORD)
            page.get_by_role("button", name="Inloggen").click()
            page.wait_for_url("**/")
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
            server = Server(port, cookie)
            for path in pages.values():  # warm up: templates compiled, the catalog's pages in the cache
                server.get(path)
                load_event_ms(page, path)
            per_round: dict[tuple[str, str], list[float]] = {}
            medians: dict[tuple[str, str], list[float]] = {}
            raw: dict[tuple[str, str], list[list[float]]] = {}  # every sample, per round (in the JSON)
            during, taken, moved, seconds = 0, 0, 0, 0.0
            for _work in benchlib.rounds(args, NAME, f"{len(pages)} pages x {args.pages_samples}, {n} cameras offloading"):
                samples: dict[tuple[str, str], list[float]] = {}
                before, started = offloaded(data, built)[1], time.perf_counter()
                for _ in range(args.pages_samples):
                    for label, path in pages.items():  # taking turns, so that a busy moment hits every page
                        during += 1 if feeder.pending() else 0
                        taken += 1
                        samples.setdefault((label, "server"), []).append(server.get(path))
                        samples.setdefault((label, "Chromium load"), []).append(load_event_ms(page, path))
                moved += offloaded(data, built)[1] - before
                seconds += time.perf_counter() - started
                for key, values in samples.items():
                    per_round.setdefault(key, []).append(p95(values))
                    medians.setdefault(key, []).append(benchlib.median(values))
                for key, values in samples.items():
                    raw.setdefault(key, []).append([round(v, 1) for v in values])
            context.close()
            browser.close()
    finally:
        if feeder:
            feeder.done.set()
            feeder.join(150)
        if serve:
            stop(serve)
        for sim in sims:
            sim.stop()

    size = f"{args.pages_recordings} recordings, {args.pages_audit} audit entries"
    rows = []
    for label in pages:
        for client in ("server", "Chromium load"):
            target = None if label.startswith("account") else "< 300"
            rows.append(result(NAME, f"{label} {client} p95", per_round[(label, client)], "ms", target=target,
                               note=f"{size}; per round the p95 of {args.pages_samples}; "
                                    f"medians {min(medians[(label, client)]):.0f}..{max(medians[(label, client)]):.0f} ms"
                               if target else "one user row: the floor of a page load"))
            rows[-1]["rounds"] = raw[(label, client)]
    baseline = {client: next(r for r in rows if r["name"] == f"account page (baseline) {client} p95")
                for client in ("server", "Chromium load")}
    for label in ("/opnames", "/opnames/{id}", "/logboek"):
        for client in ("server", "Chromium load"):
            ours = next(r for r in rows if r["name"] == f"{label} {client} p95")
            rows.append(ratio(NAME, f"{label} {client}: page/account page", ours, baseline[client],
                              note="context: what the page costs above the floor"))
    rows.append(result(NAME, f"offload meanwhile ({n} cameras x {fmt_size(args.pages_offload_size)})",
                       moved / seconds / MB if seconds else 0.0, "MB/s",
                       note=f"{moved / MB:.0f} MB committed while measuring; {during} of {taken} samples taken "
                            f"while cameras held recordings for the box; {offloaded(data, built)[0]} offloaded in all"))
    return rows
