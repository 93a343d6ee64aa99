#!/usr/bin/env python3
"""Benchmark driver behind scripts/bench.sh (stdlib only; run with the system python3).

Starts zerobus-local (--store null; then --store sqlite for a reduced set), runs every
measurement in its own process (bench/c/zb_bench_c for the C API, bench/py/bench_py.py
under the venv of our binding or of the official SDK), takes the median of --runs runs
per row (Python rows alternate ours/official run by run), prints a markdown table with
the ratio ours/official and writes everything to JSON. Then the callgrind figure:
instructions per ingested record on the C path (200,000 single-record calls of 20 B,
minus a run with 0 records).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = [20, 220, 750, 10240]
MIB = 1024 * 1024


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Server:
    def __init__(self, binary, store, tmp):
        self.tmp = tmp
        self.log = open(os.path.join(tmp, f"server-{store}.log"), "w")
        db = os.path.join(tmp, f"bench-{store}.db")
        self.p = subprocess.Popen([binary, "--port", "0", "--http-port", "0", "--no-auth",
                                   "--store", store, "--db", db],
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()
        m = re.search(r"grpc=(\S+) http=(\S+)", line)
        if not m:
            self.p.kill()
            raise RuntimeError(f"zerobus-local did not start: {line!r}")
        self.grpc, self.http = m.group(1), m.group(2)
        self.endpoint = f"http://{self.grpc}"
        self.workspace = f"http://{self.http}"
        self.counters = f"http://{self.http}/zerobus-local/counters"
        self.store = store

    def cpu_s(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


class Runner:
    def __init__(self, args):
        self.a = args
        self.seq = 0

    def run(self, cmd, env=None):
        """Runs one measurement process; returns its JSON result plus load and server CPU."""
        la = loadavg()
        s0 = self.server.cpu_s()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        s1 = self.server.cpu_s()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
        r = json.loads(line)
        r["load1"] = la
        r["server_cpu_s"] = round(s1 - s0, 3)
        if self.a.pause:
            time.sleep(self.a.pause)
        return r

    def table(self, tag):
        self.seq += 1
        return f"bench.{tag}.t{os.getpid()}_{self.seq}"

    def c(self, size, records, batch):
        return self.run([self.a.c_bench, "--endpoint", self.server.endpoint, "--workspace",
                         self.server.workspace, "--table", self.table("c"), "--size", str(size),
                         "--records", str(records), "--batch", str(batch)])

    def py(self, impl, method, size, records, batch=1000):
        py = self.a.py_ours if impl == "ours" else self.a.py_official
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        env.setdefault("ZEROBUS_LOG", "warn")
        return self.run([py, self.a.py_bench, "--impl", impl, "--method", method,
                         "--endpoint", self.server.endpoint, "--workspace", self.server.workspace,
                         "--table", self.table(impl), "--size", str(size), "--records", str(records),
                         "--batch", str(batch), "--counters", self.server.counters], env=env)


def median_run(runs):
    """The run with the median wall time (its other figures are reported as they are)."""
    s = sorted(runs, key=lambda r: r["wall_s"])
    return s[(len(s) - 1) // 2]


def summarize(runs):
    m = median_run(runs)
    return {
        "wall_s": m["wall_s"], "records_per_s": m["records_per_s"], "mb_per_s": m["mb_per_s"],
        "cpu_s": round(m["user_s"] + m["sys_s"], 3), "user_s": m["user_s"], "sys_s": m["sys_s"],
        "maxrss_mib": round(max(r["maxrss_kib"] for r in runs) / 1024, 1),
        "server_cpu_s": m["server_cpu_s"], "ingest_s": m.get("ingest_s"),
        "load1": round(statistics.mean(r["load1"] for r in runs), 2),
        "records_per_s_all": [r["records_per_s"] for r in runs],
        "flush_short_max": max(r.get("flush_short", 0) for r in runs),
    }


def fmt_rate(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def size_label(s):
    return f"{s // 1024} KB" if s >= 1024 else f"{s} B"


def callgrind(a, server, records):
    """Instructions per record, single-record C calls of 20 B: (Ir(N) - Ir(0)) / N."""
    out = {}
    for n in (0, records):
        f = os.path.join(a.out_dir, f"callgrind.c-single-20B.{n}.out")
        cmd = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={f}",
               a.c_bench, "--endpoint", server.endpoint, "--workspace", server.workspace,
               "--table", f"bench.cg.n{n}_{os.getpid()}", "--size", "20", "--records", str(n),
               "--batch", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"callgrind run failed:\n{p.stderr[-3000:]}")
        with open(f) as fh:
            tot = next(int(ln.split()[1]) for ln in fh if ln.startswith(("summary:", "totals:")))
        out[n] = (tot, f)
    per = (out[records][0] - out[0][0]) / records
    return {"records": records, "ir_total": out[records][0], "ir_baseline": out[0][0],
            "instructions_per_record": round(per, 1), "profile": out[records][1]}


def git_state():
    """The commit measured, and the uncommitted files of the measured code (other
    engineers work in the same checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src",
                                "include", "server", "bindings/python", "proto"],
                               capture_output=True, text=True).stdout.split("\n")
        return {"head": head, "uncommitted": [d[3:] for d in dirty if d.strip()]}
    except OSError:
        return {}


PY_CG_ROWS = [("offset", 20, 50000), ("nowait", 20, 50000), ("batch", 20, 500000),
              ("offset", 10240, 10000)]


def callgrind_python(a, server, impls):
    """Instructions per record of the whole Python process (all threads), ours and the
    official SDK: (Ir(run) - Ir(dry run)) / N, where the dry run is the same script with
    the same method, size and N but with every SDK ingest call replaced by len(): the
    difference is what the SDK's ingest calls cost (its threads included), without the
    benchmark's own loop and set-up. No --counters wait: everything the process does
    until it exits is counted, so a flush that returns early changes nothing."""
    res = []
    env = dict(os.environ, RUST_LOG="warn", ZEROBUS_LOG="warn")

    def ir(impl, method, size, n, dry):
        py = a.py_ours if impl == "ours" else a.py_official
        tag = "dry" if dry else "run"
        f = os.path.join(a.out_dir, f"callgrind.py-{impl}-{method}-{size}.{n}.{tag}.out")
        cmd = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={f}",
               py, a.py_bench, "--impl", impl, "--method", method, "--endpoint", server.endpoint,
               "--workspace", server.workspace,
               "--table", f"bench.cgpy.{impl}{method}{size}n{n}{tag}_{os.getpid()}",
               "--size", str(size), "--records", str(n)] + (["--dry"] if dry else [])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
        if p.returncode != 0:
            raise RuntimeError(f"callgrind python run failed:\n{p.stderr[-3000:]}")
        with open(f) as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith(("summary:", "totals:")))

    for method, size, n in PY_CG_ROWS:
        row = {"method": method, "size": size, "records": n}
        for impl in impls:
            row[impl] = round((ir(impl, method, size, n, False) - ir(impl, method, size, n, True))
                              / n, 1)
        if len(impls) == 2:
            row["ratio"] = round(row["official"] / row["ours"], 2)
        res.append(row)
        print(f"[callgrind] python {method} {size_label(size)}: " +
              " ".join(f"{i}={row[i]} Ir/record" for i in impls), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10x fewer records, 1 run per row")
    ap.add_argument("--only", default="c,python,official",
                    help="comma list of c, python (our binding), official")
    ap.add_argument("--runs", type=int, default=None, help="runs per row (default 3; quick 1)")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between runs")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--callgrind-only", action="store_true",
                    help="only the callgrind figures (no throughput rows, no sqlite)")
    ap.add_argument("--callgrind-records", type=int, default=200000)
    ap.add_argument("--server", required=True)
    ap.add_argument("--c-bench", required=True)
    ap.add_argument("--py-bench", required=True)
    ap.add_argument("--py-ours", default=None)
    ap.add_argument("--py-official", default=None)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--max-inflight-bytes", type=int, default=268435456)
    a = ap.parse_args()
    # SIGTERM/SIGHUP: unwind through the finally below, which stops zerobus-local
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    bad = only - {"c", "python", "official"}
    if bad:
        ap.error(f"unknown --only value(s): {', '.join(sorted(bad))}")
    runs = a.runs or (1 if a.quick else 3)
    div = 10 if a.quick else 1
    base_n = 1_000_000 // div
    big_n = 100_000 // div
    os.makedirs(a.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="zb-bench-")
    rn = Runner(a)
    results = {"machine": {"nproc": os.cpu_count(), "kernel": platform.release(),
                           "python": platform.python_version()},
               "git": git_state(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "quick": a.quick, "runs_per_row": runs, "c": [], "python": [],
               "sqlite": {"c": [], "python": []}, "callgrind": None, "callgrind_python": []}
    impls = [i for i in ("ours", "official") if (i == "ours" and "python" in only)
             or (i == "official" and "official" in only)]

    def n_for(size):
        return big_n if size >= 10240 else base_n

    def py_rows(sizes, methods, n_fn, sink, tag):
        for size in sizes:
            for method in methods:
                n = n_fn(size)
                row = {"method": method, "size": size, "records": n,
                       "batch": 1000 if method == "batch" else 1}
                per = {i: [] for i in impls}
                for rep in range(runs):
                    order = impls if rep % 2 == 0 else list(reversed(impls))
                    for impl in order:
                        per[impl].append(rn.py(impl, method, size, n))
                for impl in impls:
                    row[impl] = summarize(per[impl])
                    row[impl]["runs"] = per[impl]
                if "ours" in row and "official" in row:
                    row["ratio"] = round(row["ours"]["records_per_s"] /
                                         row["official"]["records_per_s"], 2)
                sink.append(row)
                msg = " ".join(f"{i}={fmt_rate(row[i]['records_per_s'])}/s" for i in impls)
                print(f"[{tag}] python {method:6s} {size_label(size):>6s}: {msg}"
                      + (f" ratio={row['ratio']}" if "ratio" in row else ""), flush=True)

    def c_rows(sizes, batches, n_fn, sink, tag):
        for size in sizes:
            for batch in batches:
                n = n_fn(size)
                rs = [rn.c(size, n, batch) for _ in range(runs)]
                row = {"batch": batch, "size": size, "records": n, **summarize(rs), "runs": rs}
                sink.append(row)
                print(f"[{tag}] C batch={batch:<5d} {size_label(size):>6s}: "
                      f"{fmt_rate(row['records_per_s'])}/s {row['mb_per_s']:.1f} MB/s "
                      f"cpu={row['cpu_s']}s rss={row['maxrss_mib']}MiB load={row['load1']}",
                      flush=True)

    try:
        rn.server = Server(a.server, "null", tmp)
        if "c" in only and not a.callgrind_only:
            c_rows(SIZES, [1, 100, 1000], n_for, results["c"], "null")
        if impls and not a.callgrind_only:
            py_rows(SIZES, ["offset", "nowait", "batch"], n_for, results["python"], "null")
        if "c" in only and not a.no_callgrind and shutil.which("valgrind"):
            print("[callgrind] C single-record 20 B ...", flush=True)
            results["callgrind"] = callgrind(a, rn.server, a.callgrind_records)
            print(f"[callgrind] {results['callgrind']['instructions_per_record']} "
                  "instructions per record", flush=True)
        # Python callgrind: 16 valgrind runs (~6 min); not in --quick unless asked for
        if (impls and not a.no_callgrind and shutil.which("valgrind")
                and (not a.quick or a.callgrind_only)):
            print("[callgrind] Python, instructions per record ...", flush=True)
            results["callgrind_python"] = callgrind_python(a, rn.server, impls)
        rn.server.stop()
        if not a.no_sqlite and not a.callgrind_only:
            rn.server = Server(a.server, "sqlite", tmp)
            sq_n = lambda size: 200_000 // div  # noqa: E731
            if "c" in only:
                c_rows([220], [1, 1000], sq_n, results["sqlite"]["c"], "sqlite")
            if impls:
                py_rows([220], ["offset", "batch"], sq_n, results["sqlite"]["python"], "sqlite")
            rn.server.stop()
    finally:
        try:
            rn.server.stop()
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["targets"] = targets(results, a.max_inflight_bytes)
    path = os.path.join(a.out_dir, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print()
    print(markdown(results))
    print(f"\nJSON: {path}")


def targets(res, max_inflight_bytes):
    t = []
    c = {(r["size"], r["batch"]): r for r in res["c"]}
    if (20, 1) in c:
        v = c[(20, 1)]["records_per_s"]
        t.append({"target": "C API, 20 B single-record calls >= 3,000,000 records/s",
                  "value": v, "met": v >= 3e6})
    if res["c"]:
        big = [r for r in res["c"] if r["size"] == 10240]
        if big:
            best = max(big, key=lambda r: r["mb_per_s"])
            t.append({"target": "C API, 10 KB records >= 1 GB/s of payload (best batch size: "
                                f"{best['batch']})", "value": best["mb_per_s"],
                      "met": best["mb_per_s"] >= 1000})
    both = [r for r in res["python"] if "ratio" in r]
    if both:
        worst = min(both, key=lambda r: r["ratio"])
        t.append({"target": "Python binding >= 2x the official SDK on every row (worst row: "
                            f"{worst['method']} {size_label(worst['size'])})",
                  "value": worst["ratio"], "met": all(r["ratio"] >= 2 for r in both)})
    for r in res["python"]:
        if r["method"] == "batch" and r["size"] == 20 and "ours" in r:
            v = r["ours"]["records_per_s"]
            t.append({"target": "Python binding, ingest_records_offset 20 B >= 1,000,000 records/s",
                      "value": v, "met": v >= 1e6})
    limit = max_inflight_bytes / MIB + 64
    rss = [r["maxrss_mib"] for r in res["c"]] + [r["ours"]["maxrss_mib"] for r in res["python"]
                                                  if "ours" in r]
    if rss:
        t.append({"target": f"peak RSS <= max_inflight_bytes + 64 MiB = {limit:.0f} MiB "
                            "(C and our binding, every row)", "value": max(rss),
                  "met": max(rss) <= limit})
    return t


def markdown(res):
    out = []
    if res["c"]:
        out += ["### C API (zerobus-local --store null)", "",
                "| record | call | records | wall s | records/s | payload MB/s | CPU s | "
                "peak RSS MiB | server CPU s | load |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res["c"]:
            call = "single" if r["batch"] == 1 else f"batch {r['batch']}"
            out.append(f"| {size_label(r['size'])} | {call} | {r['records']:,} | {r['wall_s']:.3f} "
                       f"| {r['records_per_s']:,.0f} | {r['mb_per_s']:.1f} | {r['cpu_s']:.3f} | "
                       f"{r['maxrss_mib']} | {r['server_cpu_s']} | {r['load1']} |")
        out.append("")
    if res["python"]:
        out += python_table("### Python (zerobus-local --store null)", res["python"])
    if res["sqlite"]["c"] or res["sqlite"]["python"]:
        out += ["### Reduced set with zerobus-local --store sqlite", ""]
        if res["sqlite"]["c"]:
            out += ["| record | call | records | records/s | payload MB/s | CPU s | peak RSS MiB "
                    "| server CPU s | load |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in res["sqlite"]["c"]:
                call = "C single" if r["batch"] == 1 else f"C batch {r['batch']}"
                out.append(f"| {size_label(r['size'])} | {call} | {r['records']:,} | "
                           f"{r['records_per_s']:,.0f} | {r['mb_per_s']:.1f} | {r['cpu_s']:.3f} | "
                           f"{r['maxrss_mib']} | {r['server_cpu_s']} | {r['load1']} |")
            out.append("")
        if res["sqlite"]["python"]:
            out += python_table("", res["sqlite"]["python"])
    cg = res.get("callgrind")
    if cg:
        out += [f"Callgrind, C path: **{cg['instructions_per_record']} instructions per record** "
                f"(single-record calls of 20 B, {cg['records']:,} records: {cg['ir_total']:,} Ir, "
                f"minus {cg['ir_baseline']:,} Ir with 0 records; all threads of the client "
                "process).", ""]
    if res.get("callgrind_python"):
        rows = res["callgrind_python"]
        impls = [i for i in ("ours", "official") if i in rows[0]]
        names = {"offset": "ingest_record_offset", "nowait": "ingest_record_nowait",
                 "batch": "ingest_records_offset ×1000"}
        out += ["Callgrind, Python: instructions per record of the SDK's ingest calls (whole "
                "process, all threads, minus a dry run of the same loop; lower is better):", "",
                "| method | record | records | " + " | ".join(f"{i} Ir/record" for i in impls)
                + (" | official/ours |" if len(impls) == 2 else " |"),
                "|---|---|---:|" + "---:|" * (len(impls) + (1 if len(impls) == 2 else 0))]
        for r in rows:
            out.append(f"| {names[r['method']]} | {size_label(r['size'])} | {r['records']:,} | "
                       + " | ".join(f"{r[i]:,.0f}" for i in impls)
                       + (f" | **{r['ratio']}** |" if "ratio" in r else " |"))
        out.append("")
    if res.get("targets"):
        out += ["### Targets", "", "| target | measured | met |", "|---|---:|---|"]
        for t in res["targets"]:
            v = t["value"]
            vs = f"{v:,.0f}" if v >= 100 else f"{v}"
            out.append(f"| {t['target']} | {vs} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(out)


def python_table(title, rows):
    impls = [i for i in ("ours", "official") if any(i in r for r in rows)]
    out = [title, ""] if title else []
    head = "| method | record | records |"
    sep = "|---|---|---:|"
    for i in impls:
        head += f" {i} records/s | {i} MB/s | {i} CPU s | {i} peak RSS MiB |"
        sep += "---:|---:|---:|---:|"
    if len(impls) == 2:
        head += " ratio ours/official |"
        sep += "---:|"
    head += " load |"
    sep += "---:|"
    out += [head, sep]
    names = {"offset": "ingest_record_offset", "nowait": "ingest_record_nowait",
             "batch": "ingest_records_offset ×1000"}
    for r in rows:
        line = f"| {names[r['method']]} | {size_label(r['size'])} | {r['records']:,} |"
        for i in impls:
            x = r[i]
            line += (f" {x['records_per_s']:,.0f} | {x['mb_per_s']:.1f} | {x['cpu_s']:.3f} | "
                     f"{x['maxrss_mib']} |")
        if len(impls) == 2:
            line += f" **{r['ratio']}** |"
        line += f" {statistics.mean(r[i]['load1'] for i in impls):.2f} |"
        out.append(line)
    out.append("")
    return out


if __name__ == "__main__":
    main()
