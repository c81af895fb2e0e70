#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/pipelines/latentsync/make_configs.py - writes the U-Net configs
vram's latentsync profile names in {args}.

LatentSync (github.com/bytedance/LatentSync) reads its resolution and its
window of frames from its U-Net config (data.resolution, data.num_frames),
not from flags.  Run this once in a LatentSync checkout: it copies
configs/unet/stage2.yaml (256 px) and configs/unet/stage2_512.yaml (512 px)
into configs/unet/vram/{256,512}px_{16,8,4}f.yaml with data.num_frames set,
changing nothing else, so that every tier and rung of the profile has its
file:

    cd LatentSync && python3 /path/to/vram/examples/pipelines/latentsync/make_configs.py
"""

import pathlib
import re
import sys

SOURCES = {256: "configs/unet/stage2.yaml", 512: "configs/unet/stage2_512.yaml"}
WINDOWS = (16, 8, 4)


def with_window(text, frames):
    """text with the num_frames of its data: section set to frames."""
    out, section, done = [], None, False
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(\w+):", line)
        if m:
            section = m.group(1)
        key = re.match(r"^(\s+)num_frames:\s*\d+", line)
        if section == "data" and key and not done:
            line = "%snum_frames: %d\n" % (key.group(1), frames)
            done = True
        out.append(line)
    if not done:
        raise SystemExit("make_configs: no data.num_frames in the config")
    return "".join(out)


def main(root="."):
    root = pathlib.Path(root)
    (root / "configs/unet/vram").mkdir(parents=True, exist_ok=True)
    for px, src in SOURCES.items():
        text = (root / src).read_text()
        if not re.search(r"^\s+resolution:\s*%d\b" % px, text, re.M):
            raise SystemExit("make_configs: %s is not the %d px config" % (src, px))
        for frames in WINDOWS:
            dst = root / ("configs/unet/vram/%dpx_%df.yaml" % (px, frames))
            dst.write_text(with_window(text, frames))
            print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
