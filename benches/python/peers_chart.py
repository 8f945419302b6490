"""Speed against placement quality, from `cargo bench --bench peers` output.

    cargo bench --bench peers > peers.out
    .venv/bin/python benches/python/peers_chart.py peers.out docs/images/peers.png

x: churn ns per op (log scale, left is faster); y: false out-of-memory
failures at 97% occupancy (log scale of 1 + count, lower is better: a
request refused although a contiguous run of free pages would have held it).
Exact first fit sits on the floor (no false failures); the O(1) allocators
sit to the left.
"""

from __future__ import annotations

import math
import sys

from pagealloc.viz import _require_pillow


def main(src: str, out: str) -> None:
    rows = []
    for line in open(src, encoding="utf-8"):
        if line.startswith("peer\t"):
            _, name, ns, _oom90, oom97 = line.rstrip("\n").split("\t")
            rows.append((name, float(ns), int(oom97)))
    Image, ImageDraw, ImageFont = _require_pillow()
    font = ImageFont.load_default()
    w, h = 900, 520
    left, right, top, bottom = 90, 30, 50, 70
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    x_lo, x_hi = math.log10(10), math.log10(5000)
    y_hi = math.log10(1 + max(100_000, max(r[2] for r in rows)))

    def xy(ns: float, oom: int) -> tuple[float, float]:
        x = left + (w - left - right) * (math.log10(ns) - x_lo) / (x_hi - x_lo)
        y = h - bottom - (h - top - bottom) * math.log10(1 + oom) / y_hi
        return x, y

    d.text((left, 14), "Speed (churn, ns per op) against placement (false out-of-memory failures at 97% occupancy)",
           fill=(20, 20, 20), font=font)
    d.rectangle([left, top, w - right, h - bottom], outline=(120, 120, 120))
    for ns in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        x, _ = xy(ns, 0)
        d.line([(x, top), (x, h - bottom)], fill=(235, 235, 235))
        d.text((x - 10, h - bottom + 6), f"{ns}", fill=(60, 60, 60), font=font)
    for oom in (0, 10, 100, 1000, 10_000, 100_000):
        _, y = xy(10, oom)
        d.line([(left, y), (w - right, y)], fill=(235, 235, 235))
        d.text((10, y - 6), f"{oom}", fill=(60, 60, 60), font=font)
    d.text((w // 2 - 60, h - 30), "churn ns per op (log), faster to the left", fill=(20, 20, 20), font=font)
    d.text((10, top - 18), "false OOM (log)", fill=(20, 20, 20), font=font)
    floor = 0
    for name, ns, oom in sorted(rows, key=lambda r: r[1]):
        x, y = xy(ns, oom)
        color = (31, 78, 156) if name.startswith("pagealloc") else (200, 90, 40)
        d.ellipse([x - 6, y - 6, x + 6, y + 6], fill=color)
        # Points on the floor sit close together: stagger their labels.
        dy = -16 - 16 * (floor % 4) if oom == 0 else -14
        floor += oom == 0
        tw = d.textlength(name, font=font)
        tx = x + 9 if x + 9 + tw < w - right else x - 9 - tw
        if oom == 0:
            d.line([(x, y - 6), (x, y + dy + 12)], fill=color)
        d.text((tx, y + dy), name, fill=color, font=font)
    img.save(out, format="PNG")
    print(f"chart written to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
