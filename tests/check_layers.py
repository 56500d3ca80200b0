#!/usr/bin/env python3
"""check_layers.py - the tree's layering, checked (ctest: layering).

Folders are layers (docs/architecture.md). A file may include:
  - a public header "mtlora/<layer>/x.h" of its own layer or of a layer
    its layer depends on (LAYERS below, applied transitively);
  - a private header by a bare name ("model_internal.h") only from its
    own folder: no "../", no path into another folder's internals;
  - a third-party header (<mpi.h>, <oneapi/dnnl/dnnl.h>, <hdf5.h>, ...)
    only in the layers that own that dependency (OWNERS below).
Every C file over MAX_LINES lines says in its opening comment why it is
long, with a line that starts "Why long:" (after the comment's " * ").

Exit 0 when the tree keeps the rules; 1 with one line per violation.
Usage: check_layers.py [REPO_ROOT]
"""
import os
import re
import sys

# layer -> (folder, layers it may include directly)
LAYERS = {
    "base":   ("src/base",   []),
    "config": ("src/config", ["io"]),
    "ops":    ("src/ops",    ["base"]),
    "data":   ("src/data",   ["base"]),
    "io":     ("io",         ["base"]),
    "shards": ("io/shards",  ["io", "data"]),
    "pascal": ("io/pascal",  ["shards", "io", "data"]),
    "model":  ("src/model",  ["ops", "config", "io"]),
    "train":  ("src/train",  ["model", "shards"]),
    "mpi":    ("mpi",        ["train"]),
    # programs, benchmarks and tests sit on top and may include anything
    "launch": ("launch",     None),
    "bench":  ("bench",      None),
    "tests":  ("tests",      None),
}

# third-party header prefix -> layers allowed to include it
OWNERS = {
    "mpi.h": {"mpi", "launch", "tests", "bench"},
    "oneapi/dnnl": {"ops"},
    "hdf5": {"shards", "pascal", "tests"},
    "H5": {"shards", "pascal", "tests"},
    "matio.h": {"pascal", "tests"},
    "yaml.h": {"config"},
    "curl/": {"io"},
    "png.h": {"io", "tests"},
    "jpeglib.h": {"io", "tests"},
    # the shard reader inflates label chunks itself (io/shards/shard_chunk.c);
    # the MAT precheck inflates compressed variables to walk them (io/pascal/mat_precheck.c)
    "zlib.h": {"shards", "pascal"},
    # JSON documents: files (io), the PEFT adapter format (model), metric records (mpi)
    "jansson.h": {"io", "model", "mpi"},
    # PyTorch .pth files in the zip format (io/pth/)
    "zip.h": {"io"},
}

# folders that belong to a layer of another folder: io/pth/ is part of io
# (its own folder only for its private header, pth_internal.h)
PART_OF = {
    "io/pth": "io",
}

# header folder under include/mtlora/ -> layer
HEADER_DIRS = {
    "base": "base", "config": "config", "ops": "ops", "data": "data",
    "io": "io", "io/shards": "shards", "io/pascal": "pascal",
    "model": "model", "train": "train", "mpi": "mpi",
}

MAX_LINES = 600


def allowed(layer):
    """The layers `layer` may include (itself and everything below)."""
    deps = LAYERS[layer][1]
    if deps is None:
        return None
    seen, todo = {layer}, list(deps)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(LAYERS[d][1])
    return seen


def layer_of(rel):
    """Layer of a repository-relative path, or None if outside the layers."""
    if rel.startswith("include/mtlora/"):
        d = os.path.dirname(rel[len("include/mtlora/"):])
        return HEADER_DIRS.get(d)
    d = os.path.dirname(rel)
    if d in PART_OF:
        return PART_OF[d]
    best = None
    for name, (folder, _) in LAYERS.items():
        if d == folder:
            best = name
    if best is None:
        for name, (folder, _) in LAYERS.items():
            if name in ("tests", "bench", "launch") and (d + "/").startswith(folder + "/"):
                best = name
    return best


INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    problems = []
    files = 0
    for top in ["src", "io", "mpi", "launch", "bench", "tests", "include"]:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                path = os.path.join(d, n)
                rel = os.path.relpath(path, root)
                layer = layer_of(rel)
                if layer is None:
                    problems.append(f"{rel}: a C file outside every layer folder")
                    continue
                files += 1
                ok = allowed(layer)
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
                for i, line in enumerate(lines, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, inc = m.groups()
                    where = f"{rel}:{i}"
                    if kind == '"' and inc.startswith("mtlora/"):
                        hl = HEADER_DIRS.get(os.path.dirname(inc[len("mtlora/"):]))
                        if hl is None:
                            problems.append(f"{where}: {inc} is not in a layer's header folder")
                        elif not os.path.exists(os.path.join(root, "include", inc)):
                            problems.append(f"{where}: {inc} does not exist")
                        elif ok is not None and hl not in ok:
                            problems.append(f"{where}: layer '{layer}' includes {inc} of the higher "
                                            f"or unrelated layer '{hl}'")
                    elif kind == '"':
                        if "/" in inc or ".." in inc:
                            problems.append(f"{where}: \"{inc}\" reaches into another folder "
                                            f"(include public headers as \"mtlora/<layer>/x.h\")")
                        elif not os.path.exists(os.path.join(d, inc)):
                            problems.append(f"{where}: private header {inc} is not in {os.path.dirname(rel)}/")
                    else:
                        for prefix, owners in OWNERS.items():
                            if inc.startswith(prefix) and layer not in owners:
                                problems.append(f"{where}: <{inc}> belongs to the layers "
                                                f"{sorted(owners)}, not '{layer}'")
                if len(lines) > MAX_LINES and rel.endswith(".c"):
                    opening = "".join(lines[:60])
                    end = opening.find("*/")
                    opening = opening[:end if end >= 0 else len(opening)]
                    if not re.search(r"^\s*\*?\s*Why long:", opening, re.M):
                        problems.append(f"{rel}: {len(lines)} lines (over {MAX_LINES}) and its opening "
                                        f"comment has no 'Why long:' line")
    for p in problems:
        print(p)
    print(f"check_layers: {files} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
