#!/usr/bin/env python3
"""Run Kluis's benchmarks: every bench/bench_*.py module, or the ones named with --only.

    .venv/bin/python bench/run.py                          # everything, full size (`make bench`)
    .venv/bin/python bench/run.py --only import --size 64M --repeats 3     # a quick look

Each module measures our code and a baseline in the same run and reports ratios: the machines are shared
and noisy, so absolute numbers wander while ratios hold. Results are printed (medians over repeats) and
written as JSON to bench/out/. The module convention is in bench/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # `import benchlib` and the bench_* modules, however run.py is started

import benchlib  # noqa: E402


def discover() -> dict[str, ModuleType]:
    """name -> module for every bench/bench_NAME.py."""
    found = {}
    for path in sorted(HERE.glob("bench_*.py")):
        found[path.stem.removeprefix("bench_")] = importlib.import_module(path.stem)
    return found


def parser(modules: dict[str, ModuleType]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Kluis benchmarks (see bench/README.md).")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(modules)}")
    p.add_argument("--size", type=benchlib.parse_size, default=benchlib.parse_size("1G"),
                   help="main data size, e.g. 8M, 256M, 1G (default 1G)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median is shown)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where inputs and data dirs go (default: a temp dir, removed afterwards)")
    p.add_argument("--out", type=Path, default=HERE / "out", help="directory for the JSON results")
    p.add_argument("--history", type=Path, default=None,
                   help="the file each run's medians are appended to, with the commit id (default: history.jsonl "
                        "beside the --out directory, i.e. bench/history.jsonl, which is committed)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    for name, module in modules.items():
        if hasattr(module, "add_arguments"):
            module.add_arguments(p.add_argument_group(name))
    return p


def fmt_value(row: dict) -> str:
    value, unit = row["value"], row["unit"]
    if unit == "x":
        return f"{value:.2f} x"
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}" if abs(value) < 10 else f"{value:.1f} {unit}"


def print_rows(rows: list[dict]) -> None:
    for row in rows:
        samples = row.get("samples", [])
        spread = ""
        if len(samples) > 1:
            spread = f"(median of {len(samples)}, {min(samples):.4g}..{max(samples):.4g})"
        target = ""
        if "target" in row:
            target = f"target {row['target']}: {'ok' if row['ok'] else 'MISSED'}"
        line = f"{row['bench']:<8} {row['name']:<38} {fmt_value(row):>14}  {spread:<34} {target}"
        print(line.rstrip())
        if row.get("round_ratios"):
            rounds = row["round_ratios"]
            print(f"{'':<8} {'':<38} {'':>14}  rounds: {', '.join(f'{r:.2f}' for r in rounds)} "
                  f"(spread {min(rounds):.2f}..{max(rounds):.2f})")
        if row.get("note"):
            print(f"{'':<8} {'':<38} {'':>14}  note: {row['note']}")
    sys.stdout.flush()


def machine() -> dict:
    return {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    modules = discover()
    args = parser(modules).parse_args(argv)
    if args.list:
        for name, module in modules.items():
            print(f"{name:<12} {(module.__doc__ or '').strip().splitlines()[0] if module.__doc__ else ''}")
        return 0
    selected = args.only or list(modules)
    unknown = [name for name in selected if name not in modules]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; there are: {', '.join(modules)}", file=sys.stderr)
        return 2
    info = machine()
    # Compile the project's modules as pip does when it installs the wheel on the appliance: without
    # this, a checkout run with PYTHONDONTWRITEBYTECODE=1 compiles them again in every timed command.
    for package in ("appliance", "sync", "webui"):
        compileall.compile_dir(HERE.parent / package, quiet=2)
    print(f"Kluis benchmarks: {info['cpus']} CPUs, load {info['loadavg_at_start'][0]:.2f}, "
          f"size {benchlib.fmt_size(args.size)}, {args.repeats} repeats; medians, MB = 10^6 bytes")
    all_rows: list[dict] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kluis-bench-", dir=args.workdir) as work:
        for name in selected:
            args.work = Path(work) / name
            args.work.mkdir()
            started = time.perf_counter()
            print(f"== {name}", flush=True)
            try:
                rows = modules[name].run(args)
            except Exception as exc:  # one broken benchmark must not cost the others' results
                traceback.print_exc()
                print(f"{name:<8} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                failed.append(name)
                rows = []
            print_rows(rows)
            print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
            all_rows += rows
            benchlib.remove(args.work)
    missed = [row for row in all_rows if row.get("ok") is False]
    print(f"targets: {sum(1 for r in all_rows if r.get('ok'))} met, {len(missed)} missed"
          + (f" ({', '.join(r['bench'] + ': ' + r['name'] for r in missed)})" if missed else ""))
    if failed:
        print(f"failed: {', '.join(failed)} (traceback on stderr)")
    save(args, selected, info, all_rows, failed)
    return 1 if failed or (missed and args.strict) else 0


def save(args, selected: list[str], info: dict, rows: list[dict], failed: list[str]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = {
        "time": stamp, "machine": info, "benchmarks": selected, "size": args.size, "repeats": args.repeats,
        "argv": sys.argv[1:], "results": rows, "failed": failed,
    }
    text = json.dumps(record, indent=1)
    path = args.out / f"{stamp}-{'-'.join(selected)}.json"
    path.write_text(text)
    (args.out / "latest.json").write_text(text)
    print(f"results: {path}")
    if rows:
        history = args.history or args.out.resolve().parent / "history.jsonl"
        with open(history, "a") as f:
            f.write(json.dumps(history_line(stamp, info, args, rows), sort_keys=True) + "\n")
        print(f"history: one line appended to {history}")


def commit_id() -> str:
    """The checkout's commit, with `+dirty` when files differ from it: a figure belongs to the code it measured."""
    def git(*command: str) -> str:
        return subprocess.run(["git", "-C", str(HERE.parent), *command], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def history_line(stamp: str, info: dict, args, rows: list[dict]) -> dict:
    """One run in bench/history.jsonl: the medians (and the rounds' spread of each ratio) with the commit,
    so that a slip between two commits shows as a line, not as a surprise in a later note."""
    results = {}
    for row in rows:
        entry: dict = {"value": round(row["value"], 4), "unit": row["unit"], "n": len(row.get("samples", []))}
        if row.get("round_ratios"):
            entry["rounds"] = [round(min(row["round_ratios"]), 4), round(max(row["round_ratios"]), 4)]
        if "ok" in row:
            entry["ok"] = row["ok"]
        results[f"{row['bench']}: {row['name']}"] = entry
    return {"time": stamp, "commit": commit_id(), "cpus": info["cpus"], "load": round(info["loadavg_at_start"][0], 2),
            "size": args.size, "repeats": args.repeats, "argv": sys.argv[1:], "results": results}


if __name__ == "__main__":
    sys.exit(main())
