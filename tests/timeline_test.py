"""timeline_test.py - RUN.TIMELINE / --timeline through mtlora_dist under
mpirun (ctest `timeline`; issue 16 item 4). The tiny model of
tests/data/dist_tiny.yaml on 2 oversubscribed ranks, as tests/dist_test.py
runs it.

1. The file: valid JSON (Python's json), the trace-event layout (X events
   with name, cat, ph, ts, dur, pid, tid; M events naming processes and
   threads), a track per rank (pid 0 and 1, "rank N"), spans that nest on
   every thread (no partial overlap; forward, loss, backward, the allreduce
   wait, clipping and AdamW inside their step; the backward's parts inside
   the backward), several gradient buckets whose allreduce spans lie inside
   their step and start during its backward, and a common clock: a bucket's
   allreduce cannot end on one rank before the other rank started it.
2. The ring: RUN.TIMELINE_STEPS 5 of 20 updates keeps updates 15..19 only
   (and the spans outside the steps: set-up, the final checkpoint);
   checkpoint spans (RUN.CHECKPOINT_EVERY 8) and evaluation spans (packed
   shards, RUN.EVAL_EVERY 1: after the epoch's last step, and at the end).
3. Never stalls, never fails the run: a path in a directory that does not
   exist, a file-size limit on rank 0 (RLIMIT_FSIZE, as a full disk), and a
   FIFO nobody reads (the end waits MTLORA_TIMELINE_WAIT seconds, then
   goes on) each give exit 0, all 20 updates and one message; a FIFO with
   a reader is first opened by the program after the last update (nothing
   is written while training) and receives the whole document.

    timeline_test.py MTLORA_DIST MTLORA_PACK CONFIG WORKDIR
"""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, PACK, CONFIG, WORK = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ENV = mpi_env()
STEPS = 20
# several buckets of the tiny model's 8829 trainable values
BASE = ["--synthetic-data", "--steps", str(STEPS), "--opts", "DATA.BATCH_SIZE", "2", "RUN.LOG_EVERY", "1",
        "RUN.BUCKET_MB", "0.01"]
EPS = 0.002  # microseconds: ts and dur are printed to the nanosecond


def cmd(*args, n=2):
    """mpirun ... mtlora_dist; KEY VALUE pairs (RUN.X) go after --opts"""
    keys, flags, i = [], [], 0
    while i < len(args):
        if re.match(r"^[A-Z][A-Z_]*\.[A-Z_.]+$", args[i]):
            keys += args[i:i + 2]
            i += 2
        else:
            flags.append(args[i])
            i += 1
    opts = BASE if "--data" not in flags else ["--opts", "DATA.BATCH_SIZE", "1", "RUN.LOG_EVERY", "1"]
    if "--data" in flags:
        flags = [f for f in flags if f != "--synthetic-data"]
    return ["mpirun", "-np", str(n), "--oversubscribe", DIST, "--config", CONFIG, *flags, *opts, *keys]


def run(*args, expect=0, env=None, timeout=240):
    c = cmd(*args)
    p = subprocess.run(c, capture_output=True, text=True, env=env or ENV, timeout=timeout)
    out = p.stdout + p.stderr
    if p.returncode != expect:
        raise AssertionError("%s: exit %d (expected %d)\n%s" % (" ".join(c), p.returncode, expect, out))
    return out


def rank_pids(mpirun_pid, rank):
    """the pid of `rank` among the mtlora_dist ranks mpirun_pid started"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = open("/proc/%s/environ" % pid, "rb").read()
            cmdline = open("/proc/%s/cmdline" % pid, "rb").read()
            ppid = int(open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid != mpirun_pid or DIST.encode() not in cmdline.split(b"\0")[0]:
            continue
        if ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env.split(b"\0"):
            return int(pid)
    return None


def trained_all(out):
    assert "step %d/%d" % (STEPS, STEPS) in out, out


# ---------------------------------------------------------------- the file

def load(path):
    with open(path) as f:
        doc = json.load(f)
    assert set(doc) >= {"traceEvents", "displayTimeUnit"}, list(doc)
    ev = doc["traceEvents"]
    spans = [e for e in ev if e["ph"] == "X"]
    meta = [e for e in ev if e["ph"] == "M"]
    assert len(spans) + len(meta) == len(ev), set(e["ph"] for e in ev)
    for e in spans:
        assert set(e) >= {"name", "cat", "ph", "ts", "dur", "pid", "tid"}, e
        assert e["ts"] >= 0 and e["dur"] >= 0, e
    return spans, meta


def inside(a, b):
    """span a lies within span b"""
    return a["ts"] >= b["ts"] - EPS and a["ts"] + a["dur"] <= b["ts"] + b["dur"] + EPS


def check_nesting(spans):
    """on each thread of each rank, any two spans are disjoint or nested"""
    tracks = {}
    for e in spans:
        tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for key, es in tracks.items():
        es.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in es:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - EPS:
                stack.pop()
            if stack:
                assert inside(e, stack[-1]), "partial overlap on %s: %s and %s" % (key, stack[-1], e)
            stack.append(e)
    return tracks


def by_step(spans, pid, name):
    return {e["args"]["step"]: e for e in spans if e["pid"] == pid and e["name"] == name}


def check_file(path, kept):
    spans, meta = load(path)
    tracks = check_nesting(spans)
    pids = sorted(set(e["pid"] for e in spans))
    assert pids == [0, 1], pids
    names = {(m["pid"], m["tid"], m["name"]): m["args"] for m in meta}
    buckets = set()
    for pid in pids:
        assert names[(pid, 0, "process_name")]["name"] == "rank %d" % pid, names
        assert names[(pid, 0, "thread_name")]["name"] == "main", names
        steps = by_step(spans, pid, "step")
        assert sorted(steps) == kept, (pid, sorted(steps))
        for e in spans:
            if e["pid"] != pid:
                continue
            if "step" in e["args"]:
                assert e["args"]["step"] in kept, e
            if e["name"] in ("data wait", "forward", "loss", "backward", "allreduce wait",
                             "grad check and clip", "optimizer"):
                assert inside(e, steps[e["args"]["step"]]), (e, steps[e["args"]["step"]])
            if e["name"].startswith("backward "):
                bw = [b for b in spans if b["pid"] == pid and b["name"] == "backward" and
                      b["args"]["step"] == e["args"]["step"] and b["args"]["micro"] == e["args"]["micro"]]
                assert len(bw) == 1 and inside(e, bw[0]), (e, bw)
        for u in kept:
            mine = [e for e in spans if e["pid"] == pid and e["args"].get("step") == u]
            kinds = set(e["name"] for e in mine)
            assert kinds >= {"step", "data wait", "forward", "loss", "backward", "backward decoders",
                             "backward stage 1", "backward stage 0", "backward embedding", "allreduce wait",
                             "grad check and clip", "optimizer", "allreduce"}, (u, kinds)
            bw = [e for e in mine if e["name"] == "backward"]
            for e in mine:
                if e["name"] != "allreduce":
                    continue
                assert e["tid"] >= 1, e
                k = e["args"]["bucket"]
                buckets.add(k)
                assert names[(pid, e["tid"], "thread_name")]["name"] == "allreduce bucket %d" % k, e
                assert inside(e, steps[u]), ("bucket outside its step", e, steps[u])
                assert any(b["ts"] - EPS <= e["ts"] <= b["ts"] + b["dur"] + EPS for b in bw), \
                    ("bucket not started during the backward", e, bw)
        assert [e for e in spans if e["pid"] == pid and e["name"] == "set-up"], "no set-up span"
    assert len(buckets) >= 3, buckets
    # one clock: bucket k of step u cannot finish on a rank before the
    # other rank started it (the allreduce needs both)
    slack = None
    for u in kept:
        ar = {(e["pid"], e["args"]["bucket"]): e for e in spans
              if e["name"] == "allreduce" and e["args"]["step"] == u}
        for k in buckets:
            for p, q in ((0, 1), (1, 0)):
                a, b = ar[(p, k)], ar[(q, k)]
                x = a["ts"] + a["dur"] - b["ts"]
                slack = x if slack is None else min(slack, x)
    assert slack > -2000.0, "clocks disagree: an allreduce ends %.0f us before the other rank starts it" % -slack
    print("  %s: %d spans on %d tracks, updates %s..%s, %d buckets; nesting holds; an allreduce ends on one "
          "rank at least %.1f us after the other rank started it (clocks agree)"
          % (os.path.basename(path), len(spans), len(tracks), kept[0], kept[-1], len(buckets), slack))
    return spans


# ---------------------------------------------------------------- checks

def check_picture(path):
    """launch/timeline-png draws the file: a PNG of the asked size with the
    bars' colours in it (skipped without gnuplot)."""
    if not shutil.which("gnuplot"):
        print("picture: gnuplot not installed, launch/timeline-png not checked")
        return
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    png = os.path.join(WORK, "timeline.png")
    p = subprocess.run([os.path.join(repo, "launch", "timeline-png"), path, png, "--last", "2", "--size", "800x300"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    from PIL import Image
    im = Image.open(png).convert("RGB")
    assert im.size == (800, 300), im.size
    colours = set(im.getdata())
    for c in ((0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28), (0x94, 0x67, 0xbd)):  # compute, allreduce, optimizer
        assert c in colours, ("bar colour missing", c)
    bad = subprocess.run([os.path.join(repo, "launch", "timeline-png"), os.path.join(WORK, "none.json"), png],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "none.json" in bad.stderr, bad.stderr
    print("picture: launch/timeline-png drew 800x300 with the compute, allreduce and optimizer bars")


def check_ring_and_spans():
    path = os.path.join(WORK, "ring.json")
    d = os.path.join(WORK, "ring-run")
    out = run("--timeline", path, "RUN.TIMELINE_STEPS", "5", "RUN.DIR", d, "RUN.CHECKPOINT_EVERY", "8")
    trained_all(out)
    assert "timeline: %s (2 ranks" % path in out, out
    spans = check_file(path, list(range(STEPS - 5, STEPS)))
    ck = sorted((e["pid"], e["args"]["after_update"]) for e in spans if e["name"] == "checkpoint")
    assert ck == [(0, 16), (0, 20), (1, 16), (1, 20)], ck
    assert not [f for f in os.listdir(WORK) if ".tmp." in f], os.listdir(WORK)
    print("ring: RUN.TIMELINE_STEPS 5 of %d updates keeps updates 15..19; checkpoints after 16 and 20" % STEPS)
    check_picture(path)
    # the key as well as the flag, the default ring (50 > 20: every update)
    path2 = os.path.join(WORK, "key.json")
    trained_all(run("RUN.TIMELINE", path2))
    check_file(path2, list(range(STEPS)))


def check_eval_spans():
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    for args in (["--synthetic", "12", src, "--min-side", "40", "--max-side", "64", "--quiet"],
                 [src, shards, "--split", "train", "--quiet"], [src, shards, "--split", "val", "--quiet"]):
        subprocess.run([PACK, *args], check=True, capture_output=True)
    path = os.path.join(WORK, "eval.json")
    run("--data", shards, "--timeline", path, "RUN.EVAL_EVERY", "1", "TRAIN.EPOCHS", "2")
    spans, _ = load(path)
    check_nesting(spans)
    ev = sorted((e["pid"], e["args"]["after_update"]) for e in spans if e["name"] == "evaluation")
    per_epoch = ev[0][1]
    assert ev == [(0, per_epoch), (0, 2 * per_epoch), (1, per_epoch), (1, 2 * per_epoch)], ev
    for pid in (0, 1):
        steps = by_step(spans, pid, "step")
        assert sorted(steps) == list(range(2 * per_epoch)), sorted(steps)
        first = [e for e in spans if e["pid"] == pid and e["name"] == "evaluation"][0]
        step = steps[per_epoch - 1]
        assert first["ts"] >= step["ts"] + step["dur"] - EPS, (first, step)
    print("evaluation: a span per rank after update %d (the end of epoch 1: after its step) and after "
          "update %d (the end)" % (per_epoch, 2 * per_epoch))


def check_unwritable():
    path = os.path.join(WORK, "no-such-dir", "t.json")
    out = run("--timeline", path)
    trained_all(out)
    msg = [l for l in out.splitlines() if "timeline" in l]
    assert len(msg) == 1 and "cannot be written" in msg[0] and "No such file or directory" in msg[0], msg
    assert not os.path.exists(os.path.dirname(path))
    print("unwritable path: exit 0, %d updates, one message: %s" % (STEPS, msg[0]))


def check_disk_full():
    path = os.path.join(WORK, "full.json")
    c = cmd("--timeline", path)
    p = subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if line.startswith("training "):  # rank 0 is past MPI's shared-memory set-up
            resource.prlimit(rank_pids(p.pid, 0), resource.RLIMIT_FSIZE, (4096, 4096))
            break
    rest, _ = p.communicate(timeout=240)
    out = "".join(lines) + rest
    assert p.returncode == 0, out
    trained_all(out)
    msg = [l for l in out.splitlines() if "timeline" in l]
    assert len(msg) == 1 and "timeline not written" in msg[0] and "File too large" in msg[0], msg
    assert not os.path.exists(path) and not [f for f in os.listdir(WORK) if f.startswith("full.json")], \
        os.listdir(WORK)
    print("disk full (RLIMIT_FSIZE 4096 on rank 0): exit 0, %d updates, no partial file, one message: %s"
          % (STEPS, msg[0]))


def check_fifo_nobody_reads():
    fifo = os.path.join(WORK, "nobody.fifo")
    os.mkfifo(fifo)
    env = dict(ENV, MTLORA_TIMELINE_WAIT="2")
    t0 = time.monotonic()
    out = run("--timeline", fifo, env=env)
    took = time.monotonic() - t0
    trained_all(out)
    msg = [l for l in out.splitlines() if "timeline" in l]
    assert len(msg) == 1 and "still writing after 2 s" in msg[0], msg
    print("FIFO nobody reads: exit 0 after %.1f s, %d updates, one message: %s" % (took, STEPS, msg[0]))


def check_fifo_reader():
    """the reader's open() returns when the writer opens: after the last update"""
    fifo = os.path.join(WORK, "reader.fifo")
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo, "rb") as f:
            got["opened"] = time.monotonic()
            got["data"] = f.read()

    th = threading.Thread(target=reader)
    th.start()
    c = cmd("--timeline", fifo)
    p = subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    last_step, lines = None, []
    for line in p.stdout:
        lines.append(line)
        if line.startswith("step %d/%d" % (STEPS, STEPS)):
            last_step = time.monotonic()
    p.wait(timeout=240)
    th.join(timeout=60)
    out = "".join(lines)
    assert p.returncode == 0 and last_step, out
    assert got.get("opened", 0) > last_step, ("the FIFO was opened before the last update", got, last_step)
    doc = json.loads(got["data"])
    assert len([e for e in doc["traceEvents"] if e["name"] == "step"]) == 2 * STEPS
    print("FIFO with a reader: first opened %.3f s after the last update's line (no I/O while training); "
          "%d bytes of valid JSON" % (got["opened"] - last_step, len(got["data"])))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    check_ring_and_spans()
    check_eval_spans()
    check_unwritable()
    check_disk_full()
    check_fifo_nobody_reads()
    check_fifo_reader()
    print("timeline: all checks passed")


if __name__ == "__main__":
    main()
