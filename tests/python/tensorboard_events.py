"""Read a TensorBoard log directory the way TensorBoard does and print what it holds.

    python tests/python/tensorboard_events.py DIR

prints {"scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width, height,
sha256 of the PNG], ...]}} as JSON. Needs the `tensorboard` package (not TensorFlow).
tests/train_torch.rs runs it on the files `diffusion-train` writes (not a pytest test).
"""

import hashlib
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def read(directory):
    guidance = {kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE}  # 0: keep every event
    acc = ea.EventAccumulator(directory, size_guidance=guidance)
    acc.Reload()
    tags = acc.Tags()
    return {
        "scalars": {
            tag: [[e.step, e.value] for e in acc.Scalars(tag)]
            for tag in sorted(tags[ea.SCALARS])
        },
        "images": {
            tag: [
                [e.step, e.width, e.height, hashlib.sha256(e.encoded_image_string).hexdigest()]
                for e in acc.Images(tag)
            ]
            for tag in sorted(tags[ea.IMAGES])
        },
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR")
    json.dump(read(sys.argv[1]), sys.stdout)
    print()
