"""The Heap at work, as a picture: resident memory and the heap's counters
over time while a workload allocates, writes, frees, and the scavenger gives
memory back under a limit (``pagealloc heap-demo``)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from .heap import Heap, rss_bytes

MIB = 1 << 20
SPAN = 8 * MIB
LIMIT = 96 * MIB


@dataclass
class Sample:
    t: float
    rss: int
    in_use: int
    retained: int
    released: int
    limit: int | None


def run_workload(heap: Heap, samples: list[Sample], phases: list[tuple[float, str]], pause: float = 0.25) -> None:
    """Allocate and write 256 MiB, free most of it, set a limit, allocate
    again, free everything, then scavenge the rest."""
    t0 = time.monotonic()

    def phase(label: str) -> None:
        phases.append((time.monotonic() - t0, label))

    def fill(n: int) -> list:
        spans = []
        for _ in range(n):
            s = heap.alloc(SPAN // 8192)
            with memoryview(s) as v:
                v[::4096] = b"\x01" * len(v[::4096])  # touch every OS page
            spans.append(s)
            time.sleep(pause / 8)
        return spans

    phase("allocate and write 256 MiB")
    spans = fill(32)
    time.sleep(pause)
    phase("free 192 MiB (kept)")
    for s in spans[8:]:
        s.free()
    del spans[8:]
    time.sleep(2 * pause)
    phase(f"memory_limit = {LIMIT // MIB} MiB")
    heap.memory_limit = LIMIT
    time.sleep(3 * pause)
    phase("allocate 128 MiB more")
    spans += fill(16)
    time.sleep(pause)
    phase("free all")
    for s in spans:
        s.free()
    spans.clear()
    time.sleep(3 * pause)
    phase("memory_limit = None; scavenge()")
    heap.memory_limit = None
    heap.scavenge(1 << 40)
    time.sleep(2 * pause)


def record(pause: float = 0.25, every: float = 0.01) -> tuple[list[Sample], list[tuple[float, str]]]:
    """Runs the workload on a fresh heap while a thread samples RSS and the
    heap's counters every ``every`` seconds."""
    heap = Heap(max_bytes=4 << 30)
    samples: list[Sample] = []
    phases: list[tuple[float, str]] = []
    done = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while not done.is_set():
            st = heap.stats()
            samples.append(Sample(time.monotonic() - t0, rss_bytes(), st.in_use, st.retained, st.released, heap.memory_limit))
            time.sleep(every)

    th = threading.Thread(target=sampler, daemon=True)
    base = rss_bytes()
    th.start()
    run_workload(heap, samples, phases, pause)
    done.set()
    th.join()
    # Resident memory relative to the process before the heap existed.
    for s in samples:
        s.rss = max(0, s.rss - base)
    return samples, phases


def draw(samples: list[Sample], phases: list[tuple[float, str]], path: str | os.PathLike[str]) -> None:
    """A line chart (MiB over seconds) of RSS, retained, in use and the limit."""
    from .viz import _require_pillow

    Image, ImageDraw, ImageFont = _require_pillow()
    font = ImageFont.load_default()
    w, h = 1000, 520
    left, right, top, bottom = 70, 20, 50, 150
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    t_max = max(s.t for s in samples) or 1.0
    y_max = max(max(s.rss, s.retained, s.in_use) for s in samples) / MIB * 1.1 or 1.0
    pw, ph = w - left - right, h - top - bottom

    def xy(t: float, mib: float) -> tuple[float, float]:
        return left + pw * t / t_max, top + ph * (1 - mib / y_max)

    d.text((left, 12), "pagealloc Heap: resident memory while a workload allocates, frees, and the scavenger returns memory",
           fill=(20, 20, 20), font=font)
    # Axes and grid.
    step = 64 if y_max > 256 else 32
    for mib in range(0, int(y_max) + 1, step):
        x0, y = xy(0, mib)
        d.line([(left, y), (w - right, y)], fill=(230, 230, 230))
        d.text((8, y - 6), f"{mib} MiB", fill=(60, 60, 60), font=font)
    for sec in range(0, int(t_max) + 1):
        x, _ = xy(sec, 0)
        d.text((x - 4, top + ph + 4), f"{sec}s", fill=(60, 60, 60), font=font)
    d.rectangle([left, top, left + pw, top + ph], outline=(120, 120, 120))
    # Phase markers.
    for k, (t, label) in enumerate(phases):
        x, _ = xy(t, 0)
        d.line([(x, top), (x, top + ph)], fill=(200, 200, 200))
        d.text((x + 3, top + 3 + 12 * (k % 2)), str(k + 1), fill=(90, 90, 90), font=font)
    # RSS wide and pale underneath, so that the heap's own count of what it
    # holds (retained) shows on top of it where the two agree.
    series = [
        ("RSS (resident memory, from /proc/self/statm)", (180, 180, 180), 7, lambda s: s.rss),
        ("retained = in use + free - released", (31, 78, 156), 2, lambda s: s.retained),
        ("in use (spans)", (46, 139, 87), 2, lambda s: s.in_use),
    ]
    for _, color, width, f in series:
        d.line([xy(s.t, f(s) / MIB) for s in samples], fill=color, width=width)
    limit_pts = [(s.t, s.limit) for s in samples if s.limit is not None]
    if limit_pts:
        lt0, lim = limit_pts[0][0], limit_pts[0][1] / MIB
        lt1 = limit_pts[-1][0]
        x0, y = xy(lt0, lim)
        x1, _ = xy(lt1, lim)
        for x in range(int(x0), int(x1), 10):
            d.line([(x, y), (min(x + 5, x1), y)], fill=(200, 40, 40), width=2)
    # Legend and phases.
    y = top + ph + 26
    for label, color, width, _ in series + [("memory limit", (200, 40, 40), 2, None)]:
        d.line([(left, y + 6), (left + 24, y + 6)], fill=color, width=max(3, width))
        d.text((left + 30, y), label, fill=(20, 20, 20), font=font)
        y += 16
    y = top + ph + 26
    for k, (_, label) in enumerate(phases):
        d.text((w // 2 + 20, y), f"{k + 1}. {label}", fill=(20, 20, 20), font=font)
        y += 16
    img.save(os.fspath(path), format="PNG")


def summary(samples: list[Sample]) -> str:
    peak = max(s.rss for s in samples)
    last = samples[-1]
    return (f"heap demo: peak RSS {peak / MIB:.0f} MiB, final RSS {last.rss / MIB:.0f} MiB, "
            f"final retained {last.retained / MIB:.0f} MiB ({len(samples)} samples)")
