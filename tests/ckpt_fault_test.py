"""ckpt_fault_test.py - checkpoints under faults, through mtlora_dist under
mpirun (ctest `checkpoint_faults`; issue 14 item 5). A tiny model on
synthetic batches, oversubscribed ranks, as tests/dist_test.py runs them.

1. RUN.DIR's checkpoints, by the program: a corrupt file with a higher step
   and RUN.KEEP_CHECKPOINTS 1 (resume skips it, the newest valid one is
   kept, the corrupt one left alone); every file unusable (exit 1 naming
   them, unless --start-over or --resume never); a FIFO named like a
   checkpoint (refused at once, no hang); an empty RUN.DIR starts fresh.
2. Disk full while writing a checkpoint: a file-size limit (RLIMIT_FSIZE,
   `ulimit -f`, set on rank 0 with prlimit: write() fails with EFBIG as a
   full disk fails with ENOSPC, through the same short-write path;
   mtlora_dist ignores SIGXFSZ) below the checkpoint's size: the run ends with exit 1 and a message naming the
   file, the previous checkpoint stays valid and no partial file is left;
   without the limit --resume auto continues from it.
3. kill -9 of rank 0 in a run that writes a checkpoint after every update:
   half the kills at seeded random moments, half as soon as a write's
   staging file appears (inside a write: counted by the temporaries they
   leave, at least one required); after each,
   every file under a checkpoint name is complete and valid (checked here,
   independently of the program: the checksum recomputed in Python), and
   --resume auto continues from the newest one.
4. Chaos: 4 ranks, 240 updates (80 under the sanitizers), interrupted at seeded random
   updates by SIGUSR1 (to mpirun, which forwards it), SIGTERM (to every
   rank, as SLURM's scancel) and kill -9 (one rank), resumed each time with
   --resume auto: the final trainable values, AdamW moments and saved model
   are bit-identical to an uninterrupted run's.

    ckpt_fault_test.py MTLORA_DIST CONFIG WORKDIR
"""
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, CONFIG, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
ENV = mpi_env(leak_check=False)  # mpi_env.py says why
BASE = ["--synthetic-data", "--opts", "DATA.BATCH_SIZE", "2", "RUN.LOG_EVERY", "1"]
# Under AddressSanitizer every start and step is several times slower: the
# kill and chaos runs are made shorter there (same checks).
with open(DIST, "rb") as _f:
    SANITIZED = b"__asan_init" in _f.read()


def cmd(n, *args):
    """mpirun ... mtlora_dist: config keys in args (KEY VALUE, a KEY being
    upper case with a dot: RUN.DIR) go into --opts, the rest are flags"""
    keys, flags, i = [], [], 0
    while i < len(args):
        if re.match(r"^[A-Z][A-Z_]*\.[A-Z_.]+$", args[i]):
            keys += args[i:i + 2]
            i += 2
        else:
            flags.append(args[i])
            i += 1
    return ["mpirun", "-np", str(n), "--oversubscribe", DIST, "--config", CONFIG, *flags, *BASE, *keys]


def run(n, *args, expect=0, timeout=240):
    p = subprocess.run(cmd(n, *args), capture_output=True, text=True, env=ENV, timeout=timeout)
    out = p.stdout + p.stderr
    if (expect == "nonzero" and p.returncode == 0) or (expect != "nonzero" and p.returncode != expect):
        raise AssertionError("%s: exit %d (expected %s)\n%s" % (" ".join(cmd(n, *args)), p.returncode, expect, out))
    return out


# ---------------------------------------------------------------- the format

def fnv1a64(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_checkpoint(path):
    """(state list, {name: bytes}) of a valid version-2 checkpoint; raises
    ValueError naming what is wrong. The checksum as checkpoint.h documents
    it: FNV-1a 64 of the header and of the data except its own 8 bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: %d bytes" % (path, len(raw)))
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    tensors = {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items() if k != "__metadata__"}
    b, e = header["checksum"]["data_offsets"]
    want = fnv1a64(data[e:], fnv1a64(data[:b], fnv1a64(raw[8:8 + hlen])))
    (got,) = struct.unpack("<Q", tensors["checksum"])
    if got != want:
        raise ValueError("%s: checksum mismatch" % path)
    state = list(struct.unpack("<10q", tensors["state"]))
    if state[7] != 2:
        raise ValueError("%s: version %d" % (path, state[7]))
    return state, tensors


def ckpt_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("ckpt-") and f.endswith(".safetensors"))


def leftovers(d):
    return [f for f in os.listdir(d) if f.startswith("ckpt-") and not f.endswith(".safetensors")]


def rank_pids(mpirun_pid, rank=None):
    """pids of the mtlora_dist ranks that mpirun_pid started (all, or the
    one of `rank`): its children, so no other test's ranks are touched"""
    found = {}
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
        for part in env.split(b"\0"):
            if part.startswith(b"OMPI_COMM_WORLD_RANK="):
                found[int(part.split(b"=")[1])] = int(pid)
    return found if rank is None else found.get(rank)


# ---------------------------------------------------------------- 1.

def check_run_dir_policy():
    d = os.path.join(WORK, "policy")
    opts = ["RUN.DIR", d, "RUN.CHECKPOINT_EVERY", "2", "RUN.KEEP_CHECKPOINTS", "1"]
    out = run(2, "--steps", "4", "--resume", "auto", *opts)
    assert "no checkpoint in %s: starting fresh" % d in out, out
    assert ckpt_files(d) == ["ckpt-00000004.safetensors"], ckpt_files(d)
    # a corrupt copy with a higher step: resume skips it, retention keeps the newest valid file
    raw = bytearray(open(os.path.join(d, "ckpt-00000004.safetensors"), "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(os.path.join(d, "ckpt-00000099.safetensors"), "wb").write(raw)
    out = run(2, "--steps", "8", "--resume", "auto", *opts)
    assert "ckpt-00000099.safetensors: checksum mismatch" in out and "resuming from %s/ckpt-00000004" % d in out, out
    assert ckpt_files(d) == ["ckpt-00000008.safetensors", "ckpt-00000099.safetensors"], ckpt_files(d)
    assert read_checkpoint(os.path.join(d, "ckpt-00000008.safetensors"))[0][0] == 8
    # every file unusable: exit 1 naming them, unless --start-over / --resume never
    os.remove(os.path.join(d, "ckpt-00000008.safetensors"))
    out = run(2, "--steps", "10", "--resume", "auto", *opts, expect=1)
    assert "ckpt-00000099.safetensors: checksum mismatch" in out and "--start-over" in out, out
    assert "no checkpoint in" not in out, out
    out = run(2, "--steps", "2", "--resume", "auto", "--start-over", *opts)
    assert "--start-over: none of the 1 checkpoint file(s)" in out and "starting fresh" in out, out
    assert ckpt_files(d) == ["ckpt-00000002.safetensors", "ckpt-00000099.safetensors"], ckpt_files(d)
    out = run(2, "--steps", "4", "--resume", "auto", *opts)  # the new run continues
    assert "resuming from %s/ckpt-00000002" % d in out, out
    out = run(2, "--steps", "2", "--resume", "never", *opts)
    assert "--resume never: starting fresh" in out, out
    run(2, "--steps", "2", "--resume", d + "/ckpt-00000099.safetensors", "--start-over", *opts, expect=2)
    # a FIFO named like a checkpoint: refused at once, not waited on
    f = os.path.join(WORK, "fifo")
    os.makedirs(f)
    os.mkfifo(os.path.join(f, "ckpt-00000009.safetensors"))
    t0 = time.time()
    out = run(2, "--steps", "2", "--resume", "auto", "RUN.DIR", f, expect=1, timeout=60)
    assert "ckpt-00000009.safetensors: a FIFO" in out, out
    fifo_s = time.time() - t0
    out = run(2, "--steps", "2", "--resume", "auto", "--start-over", "RUN.DIR", f, timeout=60)
    assert os.path.exists(os.path.join(f, "ckpt-00000002.safetensors"))
    print("run dir: a corrupt higher-step file with KEEP 1 skipped and left alone, the newest valid one kept; "
          "all unusable: exit 1 naming them, --start-over and --resume never start fresh; a FIFO refused "
          "in %.1f s" % fifo_s)


# ---------------------------------------------------------------- 2.

def check_disk_full():
    """The limit is set on rank 0 alone once it has resumed (prlimit): MPI's
    shared-memory segments, sized with ftruncate, are made before."""
    d = os.path.join(WORK, "full")
    opts = ["RUN.DIR", d, "RUN.CHECKPOINT_EVERY", "20"]
    run(2, "--steps", "4", *opts)
    prev = os.path.join(d, "ckpt-00000004.safetensors")
    size = os.path.getsize(prev)
    limit = size - 4096  # room for config.yaml and the metrics, not for a checkpoint
    assert limit > 16384, size
    p = subprocess.Popen(cmd(2, "--steps", "40", "--resume", "auto", *opts), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=ENV)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if line.startswith("resuming from"):
            resource.prlimit(rank_pids(p.pid, 0), resource.RLIMIT_FSIZE, (limit, limit))
            break
    rest, _ = p.communicate(timeout=120)
    out = "".join(lines) + rest
    assert p.returncode != 0, out
    assert "resuming from %s at step 4" % prev in out, out
    assert "ckpt-00000020.safetensors: not written, the previous checkpoints are kept" in out, out
    assert "File too large" in out, out
    assert ckpt_files(d) == ["ckpt-00000004.safetensors"] and not leftovers(d), os.listdir(d)
    assert read_checkpoint(prev)[0][0] == 4
    out = run(2, "--steps", "24", "--resume", "auto", *opts)
    assert "resuming from %s at step 4" % prev in out, out
    assert read_checkpoint(os.path.join(d, "ckpt-00000024.safetensors"))[0][0] == 24
    print("disk full (file-size limit %d < checkpoint %d bytes on rank 0): exit %d naming ckpt-00000020, "
          "ckpt-00000004 intact, no partial file; resumed from it to step 24" % (limit, size, p.returncode))


# ---------------------------------------------------------------- 3.

def check_kill_while_writing(rng):
    d = os.path.join(WORK, "kill")
    T = 120
    opts = ["--steps", str(T), "RUN.DIR", d, "RUN.CHECKPOINT_EVERY", "1", "RUN.KEEP_CHECKPOINTS", "2",
            "--resume", "auto"]
    mid_write, kills, newest, left = 0, 0, 0, set()
    want = 4 if SANITIZED else 8
    # more kills (at most 8) while none has landed inside a write yet: a
    # write is a millisecond or two, a busy machine can make this poll late
    while kills < want or (not mid_write and kills < want + 8):
        p = subprocess.Popen(cmd(2, *opts), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
        target = newest + rng.randint(2, 12)
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.startswith("step %d/" % target):
                break
        victim = rank_pids(p.pid, 0)
        assert victim, "rank 0 not found\n" + "".join(lines)
        if kills % 2 and kills < want:  # at a random moment
            time.sleep(rng.uniform(0.0, 0.03))
        else:  # as soon as a write has begun: its staging file is there
            t_end = time.time() + 10
            while time.time() < t_end and not any(".partial." in f for f in os.listdir(d)):
                pass
        os.kill(victim, signal.SIGKILL)
        rest, _ = p.communicate(timeout=120)
        out = "".join(lines) + rest
        assert p.returncode != 0, out
        if newest:
            assert "resuming from %s/ckpt-%08d.safetensors" % (d, newest) in out, out
            assert "skipped checkpoints" not in out, out
        kills += 1
        mid_write += bool(set(leftovers(d)) - left)
        left = set(leftovers(d))  # kept: resume must pass them by
        files = ckpt_files(d)
        assert files, os.listdir(d)
        steps = [read_checkpoint(os.path.join(d, f))[0][0] for f in files]  # every named file complete
        assert steps == sorted(steps) and len(files) <= 3, files
        newest = steps[-1]
    assert mid_write > 0, "no kill landed inside a checkpoint write: the test proved less than it says"
    print("kill -9 of rank 0: %d kills, half at random moments, half once a write had begun (%d inside a "
          "checkpoint write, by the temporaries left); after each every checkpoint file was complete and "
          "--resume auto continued from the newest (step %d)" % (kills, mid_write, newest))


# ---------------------------------------------------------------- 4.

def check_chaos(rng):
    T, N = (80, 4) if SANITIZED else (240, 4)
    opts = ["--steps", str(T), "RUN.CHECKPOINT_EVERY", "25", "RUN.KEEP_CHECKPOINTS", "2"]
    a_dir, b_dir = os.path.join(WORK, "chaosA"), os.path.join(WORK, "chaosB")
    a_file, b_file = os.path.join(WORK, "chaosA.safetensors"), os.path.join(WORK, "chaosB.safetensors")
    t0 = time.time()
    run(N, *opts, "RUN.DIR", a_dir, "--save-trainable", a_file)
    straight_s = time.time() - t0
    kinds = ["usr1", "term", "kill"] * (1 if SANITIZED else 3)
    rng.shuffle(kinds)
    at, log = 0, []
    for kind in kinds:
        at += rng.randint(5, 15 if SANITIZED else 22)
        p = subprocess.Popen(cmd(N, *opts, "RUN.DIR", b_dir, "--resume", "auto"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=ENV)
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.startswith("step %d/" % at):
                break
        else:
            raise AssertionError("step %d never logged\n%s" % (at, "".join(lines)))
        if kind == "usr1":
            p.send_signal(signal.SIGUSR1)
        elif kind == "term":
            for pid in rank_pids(p.pid).values():
                os.kill(pid, signal.SIGTERM)
        else:
            os.kill(rank_pids(p.pid, rng.randrange(N)), signal.SIGKILL)
        rest, _ = p.communicate(timeout=120)
        out = "".join(lines) + rest
        if kind == "kill":
            assert p.returncode != 0, out
        else:
            assert p.returncode == 3 and "checkpoint (stop signal)" in out, (kind, p.returncode, out)
        assert "skipped checkpoints" not in out, out
        log.append("%s@%d" % (kind, at))
    out = run(N, *opts, "RUN.DIR", b_dir, "--resume", "auto", "--save-trainable", b_file)
    assert "resuming from" in out, out
    chaos_s = time.time() - t0 - straight_s
    sa, ta = read_checkpoint(os.path.join(a_dir, "ckpt-%08d.safetensors" % T))
    sb, tb = read_checkpoint(os.path.join(b_dir, "ckpt-%08d.safetensors" % T))
    assert sa[:5] == sb[:5], (sa, sb)
    for k in ("trainable", "adam_m", "adam_v", "buffers"):
        assert ta[k] == tb[k], "%s differs after the interrupted run" % k
    assert open(a_file, "rb").read() == open(b_file, "rb").read(), "saved models differ"
    print("chaos: %d ranks, %d updates interrupted %d times (%s), resumed with --resume auto each time: final "
          "trainable, moments, buffers and saved model bit-identical to the uninterrupted run (%.1f s straight, "
          "%.1f s interrupted)" % (N, T, len(log), ", ".join(log), straight_s, chaos_s))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    rng = random.Random(int(os.environ.get("MTLORA_CHAOS_SEED", "14")))
    print("seed %s" % os.environ.get("MTLORA_CHAOS_SEED", "14"))
    check_run_dir_policy()
    check_disk_full()
    check_kill_while_writing(rng)
    check_chaos(rng)
    print("ckpt_fault_test: all checks passed")


if __name__ == "__main__":
    main()
