"""launch/plot on short mtlora_dist runs (ctest `plot`, issue 16 item 3).

1. A 2-rank run (four tasks, evaluated three times) and a 1-rank run with
   two tasks, both on a packed synthetic set; `launch/plot` on the first
   writes every expected PNG into RUN_DIR/plots, 800x500 by its header (and
   `--size`), not blank (decoded with PIL: many colours, plot pixels, the
   line's own colour).
2. Both runs overlaid with `--output`: the union of their quantities, the
   shared ones with two line colours.
3. Refusals: a missing run directory, an empty CSV, a CSV without the
   expected columns, a header without rows: non-zero exit naming the file;
   several runs without `--output`: exit 2.

Exit 77 (skipped) when gnuplot is not installed.

    plot_test.py MTLORA_DIST MTLORA_PACK CONFIG PLOT_SCRIPT WORKDIR
"""
import os
import shutil
import struct
import subprocess
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_env import mpi_env  # noqa: E402

DIST, PACK, CONFIG, PLOT, WORK = sys.argv[1:6]
ENV = mpi_env()
TASKS4 = "[semseg, human_parts, sal, normals]"
# the first two of launch/plot's line colours (Okabe-Ito blue, vermillion)
BLUE, VERMILLION = (0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)


def run(cmd, expect=0, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)
    if expect is not None and p.returncode != expect:
        raise AssertionError("%s: exit %d (expected %d)\n%s%s" % (" ".join(cmd), p.returncode, expect,
                                                                 p.stdout, p.stderr))
    return p


def train(ranks, run_dir, shards, tasks, epochs, lr):
    # 32 training records; batch 4: 8 updates an epoch on 1 rank, 4 on 2;
    # an evaluation every 2 epochs and at the end.
    run(["mpirun", "-np", str(ranks), "--oversubscribe", DIST, "--config", CONFIG, "--data", shards,
         "--quiet", "--opts", "DATA.BATCH_SIZE", "4", "TASKS", tasks, "RUN.DIR", run_dir,
         "TRAIN.EPOCHS", str(epochs), "RUN.EVAL_EVERY", "2", "RUN.LOG_EVERY", "1",
         "RUN.LR_SCALING", "False", "TRAIN.BASE_LR", str(lr)])
    with open(os.path.join(run_dir, "eval.csv")) as f:
        evals = len(f.read().splitlines()) - 1
    assert evals >= 2, "%s: %d evaluations" % (run_dir, evals)
    return evals


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "%s: not a PNG" % path
    return struct.unpack(">II", head[16:24])


def check_png(path, size=(800, 500), colours=()):
    from PIL import Image
    assert png_size(path) == size, "%s: %s, expected %s" % (path, png_size(path), size)
    im = Image.open(path).convert("RGB")
    im.load()
    counts = im.getcolors(maxcolors=1 << 20)
    assert counts, path
    distinct = len(counts)
    total = size[0] * size[1]
    background = max(counts)[0]
    ink = total - background  # axes, labels, grid, lines
    assert distinct >= 20, "%s: only %d colours (blank?)" % (path, distinct)
    assert ink > 0.01 * total, "%s: only %d non-background pixels" % (path, ink)
    by_colour = {c: n for n, c in counts}
    for c in colours:  # a line, not only its legend sample (about 80 pixels)
        assert by_colour.get(c, 0) >= 300, "%s: line colour #%02x%02x%02x on %d pixels" % (
            path, *c, by_colour.get(c, 0))
    return distinct, ink


def expected(tasks, metrics):
    names = {"loss.png", "loss_tasks.png", "lr.png", "images_per_s.png", "delta_m.png"}
    names |= {"loss_%s.png" % t for t in tasks}
    names |= {"eval_%s.png" % m for m in metrics}
    return names


SCORES = {"semseg": ["semseg_miou"], "human_parts": ["human_parts_miou"],
          "sal": ["sal_beta_maxf", "sal_maxf", "sal_miou"],
          "normals": ["normals_mean", "normals_rmse", "normals_mean_v2", "normals_rmse_v2"]}


def refused(args, name, expect_rc=1):
    p = run([PLOT, *args], expect=None)
    assert p.returncode != 0, "%s: exit 0\n%s" % (args, p.stdout)
    if expect_rc is not None:
        assert p.returncode == expect_rc, "%s: exit %d, expected %d\n%s" % (args, p.returncode, expect_rc,
                                                                           p.stderr)
    assert name in p.stderr, "%s: %r not named in\n%s" % (args, name, p.stderr)
    return p.stderr.strip().splitlines()[0]


def main():
    if shutil.which("gnuplot") is None:
        print("gnuplot is not installed (apt-get install gnuplot-nox): skipped")
        sys.exit(77)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    src, shards = os.path.join(WORK, "src"), os.path.join(WORK, "shards")
    for args in (["--synthetic", "40", src, "--min-side", "48", "--max-side", "96", "--quiet"],
                 [src, shards, "--split", "train", "--quiet"], [src, shards, "--split", "val", "--quiet"]):
        run([PACK, *args])
    a, b = os.path.join(WORK, "four_tasks"), os.path.join(WORK, "two_tasks")
    ea = train(2, a, shards, TASKS4, 6, 0.003)
    eb = train(1, b, shards, "[semseg, normals]", 4, 0.01)

    # 1. one run, default output directory
    p = run([PLOT, a])
    tasks4 = ["semseg", "human_parts", "sal", "normals"]
    want = expected(tasks4, [m for t in tasks4 for m in SCORES[t]])
    got = set(os.listdir(os.path.join(a, "plots")))
    assert got == want, "plots: missing %s, unexpected %s" % (sorted(want - got), sorted(got - want))
    for n in sorted(want):
        check_png(os.path.join(a, "plots", n), colours=[BLUE])
    distinct, ink = check_png(os.path.join(a, "plots", "loss.png"))
    print("one run (%d evaluations): %d plots, 800x500, not blank (loss.png: %d colours, %d plot pixels)"
          % (ea, len(want), distinct, ink))
    small = os.path.join(WORK, "small")
    run([PLOT, a, "--size", "640x400", "--output", small, "--linear"])
    check_png(os.path.join(small, "loss.png"), size=(640, 400), colours=[BLUE])

    # 2. two runs with different tasks overlaid
    cmp_dir = os.path.join(WORK, "compare")
    p = run([PLOT, a, b, "--output", cmp_dir])
    got = set(os.listdir(cmp_dir))
    assert got == want, "overlay: missing %s, unexpected %s" % (sorted(want - got), sorted(got - want))
    shared = ["loss.png", "loss_tasks.png", "loss_semseg.png", "loss_normals.png", "lr.png", "images_per_s.png",
              "eval_semseg_miou.png", "eval_normals_mean.png", "delta_m.png"]
    for n in shared:
        check_png(os.path.join(cmp_dir, n), colours=[BLUE, VERMILLION])
    for n in ["loss_sal.png", "eval_sal_maxf.png", "eval_human_parts_miou.png"]:  # the first run's only
        check_png(os.path.join(cmp_dir, n), colours=[BLUE])
    print("overlay of a 4-task and a 2-task run (%d evaluations): %d plots, the %d shared ones with two "
          "line colours" % (eb, len(got), len(shared)))

    # 3. refusals
    bad = os.path.join(WORK, "bad")
    msgs = [refused([os.path.join(WORK, "no_such_run")], os.path.join(WORK, "no_such_run"))]
    empty = os.path.join(bad, "empty")
    shutil.copytree(a, empty, ignore=shutil.ignore_patterns("plots", "*.safetensors"))
    open(os.path.join(empty, "eval.csv"), "w").close()
    msgs.append(refused([empty], os.path.join(empty, "eval.csv")))
    nocols = os.path.join(bad, "nocols")
    shutil.copytree(a, nocols, ignore=shutil.ignore_patterns("plots", "*.safetensors"))
    with open(os.path.join(nocols, "metrics.csv"), "w") as f:
        f.write("when,what\n1,2\n")
    msgs.append(refused([nocols], os.path.join(nocols, "metrics.csv")))
    # the other plots are still written
    assert os.path.exists(os.path.join(nocols, "plots", "delta_m.png"))
    assert not os.path.exists(os.path.join(nocols, "plots", "loss.png"))
    noeval = os.path.join(bad, "noeval")
    shutil.copytree(a, noeval, ignore=shutil.ignore_patterns("plots", "*.safetensors"))
    with open(os.path.join(noeval, "eval.csv"), "w") as f:
        f.write("step,score\n1,0.5\n")
    msgs.append(refused([noeval], os.path.join(noeval, "eval.csv")))
    header_only = os.path.join(bad, "header_only")
    shutil.copytree(a, header_only, ignore=shutil.ignore_patterns("plots", "*.safetensors"))
    with open(os.path.join(a, "metrics.csv")) as f:
        head = f.readline()
    with open(os.path.join(header_only, "metrics.csv"), "w") as f:
        f.write(head)
    msgs.append(refused([header_only], os.path.join(header_only, "metrics.csv")))
    missing = os.path.join(bad, "missing")
    shutil.copytree(a, missing, ignore=shutil.ignore_patterns("plots", "*.safetensors", "metrics.csv"))
    msgs.append(refused([missing], os.path.join(missing, "metrics.csv")))
    msgs.append(refused([a, b], "--output", expect_rc=2))
    print("refused, naming the file:")
    for m in msgs:
        print("  " + m)


if __name__ == "__main__":
    main()
