"""End-to-end test of mtlora-export on the PyTorch reference cases.

    export_cli_test.py MTLORA_EXPORT MTLORA_INFER MODEL_CASES_DIR WORK_DIR

--merge: for every task of the adapter cases, the merged plain Swin run by
mtlora-infer gives the adapted model's logits of that task (relative error
<= 1e-5), its file has plain names and only that task's head, every adapted
linear changed and everything else was copied bit for bit.
--adapter-out / --adapter: the adapter directory holds exactly the lora_*
tensors, its adapter_config.json describes the model, and loading it onto a
base whose trained tensors are scrambled (or onto an ImageNet-style plain
Swin file) gives back the original weights bit for bit.
Then bad input is refused with a clear message and the right exit status.
Prints 'N passed, M failed'.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from bundle import read_safetensors, write_safetensors  # noqa: E402

EXPORT, INFER, CASES, WORK = sys.argv[1:5]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
results = []
rng = np.random.default_rng(2024)

MERGE_CASES = ("lora", "mtl_lora", "mtl_lora_diag_mixed", "cgc_lora", "cgc_lora_mixed")
ADAPTER_CASES = {"mtl_lora": "MTL_LORA", "cgc_lora_mixed": "MIXED", "mtlora4": "MTLORA"}


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    return ok


def run(exe, args):
    p = subprocess.run([exe] + args, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def case_files(case):
    d = os.path.join(CASES, case)
    return os.path.join(d, "config.yaml"), os.path.join(d, "weights.safetensors")


def config_info(path):
    """TASKS, DATA.IMG_SIZE and MODEL.MTLORA.R of a case's config.yaml."""
    text = open(path).read()
    tasks = [t.strip() for t in re.search(r"^TASKS: \[(.*)\]", text, re.M).group(1).split(",")]
    size = int(re.search(r"^\s+IMG_SIZE: (\d+)", text, re.M).group(1))
    depths = re.search(r"^\s+DEPTHS: \[(.*)\]", text, re.M).group(1).split(",")
    r = [int(v) for v in re.search(r"^    R: \[(.*)\]", text, re.M).group(1).split(",")]
    if len(r) == 1:
        r = r * len(depths)
    return tasks, size, r


def same(a, b):
    """Bit-for-bit equal. A one-element int64 (num_batches_tracked) compares by
    value: the reference files store it as [1], mt_model_save as a scalar []."""
    if a.dtype == b.dtype == np.int64 and a.size == b.size == 1:
        return a.reshape(-1)[0] == b.reshape(-1)[0]
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def derived(n):
    """Buffers mt_model_save derives from the geometry (the reference cases leave them out)."""
    return n.endswith((".relative_position_index", ".attn_mask"))


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# ---- merge --------------------------------------------------------------------
worst = {}
for case in MERGE_CASES:
    cfg, w = case_files(case)
    tasks, S, _ = config_info(cfg)
    W = read_safetensors(w)
    img = os.path.join(WORK, case + "_x.h5")
    with h5py.File(img, "w") as f:
        f["images"] = rng.standard_normal((2, 3, S, S)).astype(np.float32)
    a_out = os.path.join(WORK, case + "_adapted.h5")
    rc, log = run(INFER, ["--config", cfg, "--weights", w, "--input", img, "--output", a_out])
    if not check(case + " adapted model runs", rc == 0, log[-300:]):
        continue
    with h5py.File(a_out, "r") as f:
        ref = {t: f[t][()] for t in tasks}
    worst[case] = 0.0
    for t in tasks:
        merged = os.path.join(WORK, "%s_%s.safetensors" % (case, t))
        myaml = merged[: -len(".safetensors")] + ".yaml"
        rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--merge", "--task", t, "--output", merged])
        if not check("%s merge task %s" % (case, t), rc == 0 and os.path.exists(myaml) and t in log,
                     log[-300:]):
            continue
        b_out = os.path.join(WORK, "%s_%s_merged.h5" % (case, t))
        rc, log = run(INFER, ["--config", myaml, "--weights", merged, "--input", img, "--output", b_out])
        if not check("%s merged %s runs in mtlora-infer" % (case, t), rc == 0, log[-300:]):
            continue
        with h5py.File(b_out, "r") as f:
            outs = sorted(f.keys())
            e = rel(f[t][()], ref[t]) if t in f else float("inf")
        worst[case] = max(worst[case], e)
        check("%s merged %s logits (max rel err %.2e), only that task" % (case, t, e),
              e <= 1e-5 and outs == [t], str(outs))
        M = read_safetensors(merged)
        bad = [n for n in M if "lora_" in n or ".linear." in n]
        heads = [n for n in M if n.startswith(("decoders.", "downsampler."))]
        other = [n for n in heads if not (n.startswith("decoders.decoders.%s." % t)
                                          or n.startswith("downsampler.%s." % t))]
        want_heads = [n for n in W if n.startswith(("decoders.decoders.%s." % t, "downsampler.%s." % t))]
        check("%s merged %s names plain, head of %s only" % (case, t, t),
              not bad and not other and sorted(heads) == sorted(want_heads),
              "lora/linear: %s, other heads: %s" % (bad[:3], other[:3]))
        folded, unchanged, copied_bad, fold_bad = 0, 0, [], []
        for n, v in M.items():
            if derived(n):
                continue
            if n in W:
                if not same(v, W[n]):
                    copied_bad.append(n)
                continue
            assert n.endswith(".weight") or n.endswith(".bias"), n
            prefix, leaf = n.rsplit(".", 1)
            base = W.get(prefix + ".linear." + leaf)
            if base is None or base.shape != v.shape:
                copied_bad.append(n)
                continue
            adapted = leaf == "weight" and any(k.startswith(prefix + ".lora_") for k in W)
            if adapted:
                folded += 1
                if same(v, base):
                    fold_bad.append(n)
            else:
                unchanged += 1
                if not same(v, base):
                    fold_bad.append(n)
        check("%s merged %s: %d adapted weights changed, %d other tensors copied exactly"
              % (case, t, folded, len(M) - folded - sum(map(derived, M))), folded > 0 and not copied_bad and not fold_bad,
              "not copied: %s, fold wrong: %s" % (copied_bad[:3], fold_bad[:3]))
print("worst merge error per case: " + ", ".join("%s %.2e" % kv for kv in worst.items()))

cfg4, w4 = case_files("mtlora4")
rc, log = run(EXPORT, ["--config", cfg4, "--weights", w4, "--merge", "--task", "semseg",
                       "--output", os.path.join(WORK, "m4.safetensors")])
check("merging MTLoRA with task paths refused", rc == 1 and "MTLoRA" in log
      and not os.path.exists(os.path.join(WORK, "m4.safetensors")), log[:200])
cfg, w = case_files("lora")
rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--merge", "--task", "nosuch",
                       "--output", os.path.join(WORK, "n.safetensors")])
check("--task nosuch refused by name", rc == 2 and "nosuch" in log and "semseg" in log, log)
rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--merge", "--task", "sal", "--output",
                       os.path.join(WORK, "no_such_dir", "m.safetensors")])
check("unwritable --output refused", rc == 1 and "no_such_dir" in log, log[:200])
rc, log = run(EXPORT, ["--config", cfg, "--weights", os.path.join(WORK, "absent.safetensors"),
                       "--merge", "--task", "sal", "--output", os.path.join(WORK, "m.safetensors")])
check("missing --weights refused by name", rc == 1 and "absent.safetensors" in log, log[:200])
rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--merge", "--task", "sal",
                       "--output", os.path.join(WORK, "lora_bench.safetensors"), "--bench", "2"])
check("--bench prints the timings", rc == 0 and "bench: adapted model" in log and "speed-up" in log,
      log.splitlines()[-1] if log else "")


# ---- adapter export and load back -------------------------------------------
def plain_name(n):
    """The ImageNet Swin name of a backbone tensor (as MT_LOAD_PRETRAINED maps it)."""
    return n[len("backbone."):].replace(".linear.", ".")


def load_back(case, adapter_dir, W, flag, src, suffix, what):
    """--adapter DIR onto src (--base or --pretrained): every tensor of W back bit for bit."""
    back = os.path.join(WORK, case + suffix + ".safetensors")
    rc, log = run(EXPORT, ["--adapter", adapter_dir, flag, src, "--output", back])
    if check("%s --adapter %s" % (case, flag), rc == 0, log[-300:]):
        B = read_safetensors(back)
        diff = [n for n in W if n not in B or not same(B[n], W[n])]
        check(what, sorted(n for n in B if not derived(n)) == sorted(W) and not diff, str(diff[:4]))


for case, peft in ADAPTER_CASES.items():
    cfg, w = case_files(case)
    tasks, S, r = config_info(cfg)
    W = read_safetensors(w)
    out = os.path.join(WORK, case + "_adapter")
    rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--adapter-out", out])
    if not check(case + " --adapter-out", rc == 0, log[-300:]):
        continue
    A = read_safetensors(os.path.join(out, "adapter_model.safetensors"))
    Tm = read_safetensors(os.path.join(out, "trained_modules.safetensors"))
    lora = sorted(n for n in W if "lora_" in n)
    check("%s adapter_model holds exactly the %d lora_ tensors, values equal" % (case, len(lora)),
          sorted(A) == lora and all(same(A[n], W[n]) for n in lora))
    bn = [n for n in W if re.search(r"\.(running_mean|running_var|num_batches_tracked)$", n)]
    check("%s trained_modules: %d tensors, no lora_, BatchNorm buffers, values equal" % (case, len(Tm)),
          not any("lora_" in n for n in Tm) and set(bn) <= set(Tm)
          and all(n in W and same(Tm[n], W[n]) for n in Tm)
          and any(n.startswith("decoders.") and n.endswith(".weight") for n in Tm))
    trained = set(A) | set(Tm)
    frozen = [n for n in W if n not in trained]
    check("%s the block linears are frozen (not in the adapter)" % case,
          "backbone.layers.0.blocks.0.attn.qkv.linear.weight" in frozen)
    try:
        J = json.load(open(os.path.join(out, "adapter_config.json")))
    except ValueError as e:
        check(case + " adapter_config.json is JSON", False, str(e))
        continue
    ok = (J["format"] == "mtlora-adapter" and J["format_version"] == 1 and J["peft_type"] == peft
          and J["tasks"] == tasks and J["r"] == r and J["bias"] == "none"
          and J["adapter_tensors"] == len(A) and J["adapter_values"] == sum(v.size for v in A.values())
          and J["modules_to_save_file"] == "trained_modules.safetensors"
          and J["base_model"]["type"] == "swin" and J["base_model"]["img_size"] == S
          and J["base_model"]["depths"] == [2, 2, 2, 2]
          and J["target_modules"] == [m for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
                                      if J["layer_kinds"][m] != "none"])
    kinds = set(J["layer_kinds"].values()) - {"none"}
    ok = ok and ("mtl_lora" in kinds) == ("mtl_lora" in J) and ("cgc_lora" in kinds) == ("cgc_lora" in J)
    ok = ok and set(J["scaling"]) == kinds and set(J["lora_alpha"]) == kinds
    ok = ok and all(abs(J["lora_alpha"][k][s] - J["scaling"][k][s] * r[s]) < 1e-6
                    for k in kinds for s in range(len(r)))
    if case == "cgc_lora_mixed":
        ok = ok and J["layer_kinds"] == {"attn.qkv": "mtl_lora", "attn.proj": "lora",
                                         "mlp.fc1": "cgc_lora", "mlp.fc2": "cgc_lora"}
        ok = ok and J["cgc_lora"]["shared_experts"] == 2 and J["cgc_lora"]["task_experts"] == 1
    check("%s adapter_config.json fields (%s)" % (case, J["peft_type"]), ok, json.dumps(J)[:400])

    # a base whose trained tensors are scrambled: only the frozen ones survive
    scrambled = {}
    for n, v in W.items():
        if n in trained:
            v = (rng.integers(0, 1000, v.shape).astype(v.dtype) if v.dtype == np.int64
                 else rng.standard_normal(v.shape).astype(v.dtype))
        scrambled[n] = v
    base = os.path.join(WORK, case + "_base.safetensors")
    write_safetensors(base, scrambled)
    load_back(case, out, W, "--base", base, "_back",
              "%s loaded back == weights.safetensors, all %d tensors bit for bit" % (case, len(W)))
    # an ImageNet-style Swin file: plain names, the frozen encoder (and
    # scrambled trained encoder tensors, which the adapter overrides)
    pre = {plain_name(n): v for n, v in scrambled.items()
           if n.startswith("backbone.") and "lora_" not in n
           and "relative_position_index" not in n and "attn_mask" not in n}
    pre["head.weight"] = rng.standard_normal((10, 64)).astype(np.float32)  # classifier: ignored
    pfile = os.path.join(WORK, case + "_swin.safetensors")
    write_safetensors(pfile, pre)
    load_back(case, out, W, "--pretrained", pfile, "_back_pre",
              "%s loaded back onto plain Swin == weights.safetensors, bit for bit" % case)

# ---- refusals of the adapter modes ----------------------------------------------
src = os.path.join(WORK, "mtl_lora_adapter")
base = os.path.join(WORK, "mtl_lora_base.safetensors")
if os.path.isdir(src):
    bad = os.path.join(WORK, "tampered_r")
    shutil.copytree(src, bad)
    J = json.load(open(os.path.join(bad, "adapter_config.json")))
    J["r"][0] += 1
    json.dump(J, open(os.path.join(bad, "adapter_config.json"), "w"), indent=1)
    rc, log = run(EXPORT, ["--adapter", bad, "--base", base, "--output", os.path.join(WORK, "t.safetensors")])
    check("tampered r refused naming the field", rc == 1 and '"r"' in log and "adapter_config.json" in log,
          log)
    bad = os.path.join(WORK, "tampered_kind")
    shutil.copytree(src, bad)
    J = json.load(open(os.path.join(bad, "adapter_config.json")))
    J["layer_kinds"]["attn.qkv"] = "lora"
    json.dump(J, open(os.path.join(bad, "adapter_config.json"), "w"))
    rc, log = run(EXPORT, ["--adapter", bad, "--base", base, "--output", os.path.join(WORK, "t.safetensors")])
    check("tampered layer_kinds refused naming the field", rc == 1 and '"layer_kinds"' in log, log)
    # every field is checked (issue 14): alpha, dropout, bias, counts, and the text itself
    def tampered(name, edit, needle, text_edit=None):
        d = os.path.join(WORK, name)
        shutil.copytree(src, d)
        jp = os.path.join(d, "adapter_config.json")
        if text_edit:
            text = open(jp).read()
            open(jp, "w").write(text_edit(text))
        else:
            J = json.load(open(jp))
            edit(J)
            json.dump(J, open(jp, "w"), indent=2)
        rc, log = run(EXPORT, ["--adapter", d, "--base", base, "--output", os.path.join(WORK, "t.safetensors")])
        check("%s refused naming the file and %s" % (name, needle),
              rc == 1 and needle in log and "adapter_config.json" in log, log)
    kind0 = sorted(json.load(open(os.path.join(src, "adapter_config.json")))["lora_alpha"])[0]
    tampered("tampered_alpha", lambda J: J["lora_alpha"][kind0].__setitem__(0, 99.0), "lora_alpha")
    tampered("tampered_dropout", lambda J: J["lora_dropout"][kind0].__setitem__(0, 1.5), "lora_dropout")
    tampered("tampered_bias", lambda J: J.__setitem__("bias", "all"), '"bias"')
    tampered("misspelt_field", lambda J: J.__setitem__("lora_aplha", 16), "lora_aplha")
    tampered("tampered_count", lambda J: J.__setitem__("adapter_tensors", J["adapter_tensors"] + 1),
             "adapter_tensors")
    tampered("duplicate_key", None, 'key "bias" appears twice',
             lambda t: t.replace('"bias": "none"', '"bias": "none", "bias": "none"'))
    tampered("leading_zero", None, "format_version",
             lambda t: t.replace('"format_version": 1', '"format_version": 01'))
    bad = os.path.join(WORK, "no_adapter_model")
    shutil.copytree(src, bad)
    os.remove(os.path.join(bad, "adapter_model.safetensors"))
    rc, log = run(EXPORT, ["--adapter", bad, "--base", base, "--output", os.path.join(WORK, "t.safetensors")])
    check("missing adapter_model.safetensors refused by name",
          rc == 1 and "adapter_model.safetensors" in log, log)
    bad = os.path.join(WORK, "bad_json")
    shutil.copytree(src, bad)
    open(os.path.join(bad, "adapter_config.json"), "w").write('{"format": "mtlora-adapter", "r": [4,')
    rc, log = run(EXPORT, ["--adapter", bad, "--base", base, "--output", os.path.join(WORK, "t.safetensors")])
    check("unreadable adapter_config.json refused by name", rc == 1 and "adapter_config.json" in log, log)
    bad = os.path.join(WORK, "partial_adapter")
    shutil.copytree(src, bad)
    A = read_safetensors(os.path.join(bad, "adapter_model.safetensors"))
    A.pop(sorted(A)[0])
    write_safetensors(os.path.join(bad, "adapter_model.safetensors"), A)
    rc, log = run(EXPORT, ["--adapter", bad, "--pretrained", os.path.join(WORK, "mtl_lora_swin.safetensors"),
                           "--output", os.path.join(WORK, "t.safetensors")])
    check("adapter file lacking a tensor refused by name", rc == 1 and "lacks 1" in log, log[:300])
    rc, log = run(EXPORT, ["--adapter", src, "--base", case_files("lora")[1],
                           "--output", os.path.join(WORK, "t.safetensors")])
    check("base of another model refused", rc == 1 and "missing" in log, log[:200])
    rc, log = run(EXPORT, ["--adapter", src, "--base", base, "--output", os.path.join(WORK, "nodir", "t.safetensors")])
    check("unwritable load-back --output refused", rc == 1 and "nodir" in log, log[:200])
afile = os.path.join(WORK, "a_file")
open(afile, "w").write("x")
cfg, w = case_files("mtl_lora")
rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--adapter-out", afile])
check("--adapter-out onto a file refused", rc == 1 and "a_file" in log and "not a directory" in log, log)
cfg, w = case_files("full_ft")
rc, log = run(EXPORT, ["--config", cfg, "--weights", w, "--adapter-out", os.path.join(WORK, "ft_adapter")])
check("full_ft has no adapter to export", rc == 1 and "full_ft" in log, log)
rc, log = run(EXPORT, ["--adapter", os.path.join(WORK, "nowhere"), "--base", base, "--output", "x.safetensors"])
check("missing adapter directory refused by name", rc == 1 and "nowhere" in log, log)
rc, log = run(EXPORT, ["--merge", "--task", "semseg"])
check("incomplete command line refused", rc == 2 and "usage" in log, log[:200])
rc, log = run(EXPORT, ["--adapter", src, "--output", "x.safetensors"])
check("--adapter without a base refused", rc == 2, log[:200])
rc, log = run(EXPORT, ["--help"])
check("--help prints usage", rc == 0 and "usage: mtlora-export" in log and "--adapter-out" in log)
print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
sys.exit(0 if all(results) else 1)
