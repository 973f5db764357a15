"""Independent re-derivation of a manifest's training list under synthetic augmentation.

The user's classifier composes its training set from the real split and a sample-selection
file (`data.synthetic_augmentation`). This script derives that list from the written rules
alone, with CPython's own `random.Random`, and compares it with the `train` list of a
manifest `balance-split balance` wrote:

1. real part: the real split's `train` entries in order; in `replace_minority` mode
   without those labelled `replace_class`;
2. candidates: the selection file's `train` entries in order; in `replace_minority` mode
   only those labelled `replace_class`;
3. limit: `max_samples` N keeps the first N candidates; `max_ratio` r keeps
   `random.Random(seed).sample(range(len(candidates)), int(len(real part) * r))`, in the
   order drawn; a limit of 0 keeps none, one at least the number of candidates keeps all;
4. the list is the real part followed by the kept candidates.

Usage: python synthetic_reference.py MANIFEST CONFIG.yaml [ROOT]   (ROOT: where the config's
and the manifest's relative paths resolve, default the current directory; exit 0 when the
lists agree entry for entry, 1 with the first difference)
"""

import json
import os
import random
import sys

import yaml


def compose(real, selection, section, seed):
    """The (path, label) list their loaders train on."""
    mode = section.get("mode", "augment")
    replace = section.get("replace_class") if mode == "replace_minority" else None
    kept_real = [e for e in real if replace is None or e["label"] != replace]
    candidates = [e for e in selection if replace is None or e["label"] == replace]
    limit = section.get("limit") or {}
    how = limit.get("mode")
    if how is None:
        chosen = candidates
    else:
        n = limit["max_samples"] if how == "max_samples" else int(len(kept_real) * limit["max_ratio"])
        if n <= 0:
            chosen = []
        elif n >= len(candidates):
            chosen = candidates
        elif how == "max_samples":
            chosen = candidates[:n]
        else:
            picks = random.Random(seed).sample(range(len(candidates)), n)
            chosen = [candidates[i] for i in picks]
    return [(e["path"], e["label"]) for e in kept_real + chosen]


def check(manifest_path, config_path, root="."):
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    section = config["data"]["synthetic_augmentation"]
    with open(os.path.join(root, manifest["balancing"]["source"]["split_file"]), encoding="utf-8") as f:
        real = json.load(f)["train"]
    with open(os.path.join(root, section["split_file"]), encoding="utf-8") as f:
        selection = json.load(f)["train"]
    want = compose(real, selection, section, manifest["balancing"]["seed"])
    got = [(e["path"], e["label"]) for e in manifest["train"]]
    marks = [bool(e.get("synthetic")) for e in manifest["train"]]
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        print(f"differs at train[{first}] (lengths {len(got)} / {len(want)})")
        return 1
    n_real = len(manifest["balancing"]["source_index"])
    if marks != [False] * n_real + [True] * (len(got) - n_real):
        print("the synthetic marks are not exactly the entries after the real part")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(check(*sys.argv[1:4]))
