"""A picture of the heap: one row of 512 cells per chunk.

Reading the picture: each row is a 4 MiB chunk, each cell one 8 KiB page,
lowest address at the top left, addresses increasing left to right and then
down, exactly the order in which first fit searches. In-use pages are dark
blue, free pages pale, and free pages that are scavenged (returned to the OS,
Go 1.19's scavenged bitmap) sand-coloured; pages in use and scavenged at once (Go 1.26's
heap-base padding) purple. Rows are labelled with the chunk index and its base
address. A hatched band marks a gap between grown regions (chunks the heap
never grew into), with its size, instead of drawing thousands of empty rows.
When there are more chunks than ``max_rows``, each row stands for several
consecutive chunks and each cell's shade is the fraction of those pages in
use; the legend states the scale.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._pagealloc import PageAlloc

IN_USE = (31, 78, 156)
FREE = (233, 240, 232)
SCAVENGED = (222, 196, 140)
PADDING = (150, 110, 160)
GAP = (200, 200, 200)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)

PAGES = 512
LABEL_WIDTH = 200
MARGIN = 10
TITLE_HEIGHT = 44
LEGEND_HEIGHT = 28
GAP_HEIGHT = 16

# Reverses the bits of a byte: our bitmaps put page 0 in bit 0, Pillow's
# 1-bit images put pixel 0 in bit 7.
_REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _require_pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as e:  # pragma: no cover - exercised in a subprocess test
        raise ImportError(
            "render_map needs Pillow; install the viz extra: pip install 'pagealloc[viz]'"
        ) from e
    return Image, ImageDraw, ImageFont


def chart_axes(d, font, left: float, y0: float, pw: float, ph: float, y_max: float, y_label,
               x_end: float, x_label) -> None:
    """A chart's frame, five horizontal grid lines labelled by ``y_label(v)``
    and six x labels ``x_label(v)`` (the last ending at the axis's end), in
    the box at (left, y0) of pw x ph pixels."""
    d.rectangle([left, y0, left + pw, y0 + ph], outline=(120, 120, 120))
    for i in range(5):
        v = y_max * i / 4
        y = y0 + ph - ph * i / 4
        d.line([(left, y), (left + pw, y)], fill=(232, 232, 232))
        d.text((6, y - 6), y_label(v), fill=(60, 60, 60), font=font)
    for i in range(6):
        label = x_label(x_end * i / 5)
        x = left + pw * i / 5 - (6 * len(label) if i == 5 else 10)
        d.text((x, y0 + ph + 3), label, fill=(60, 60, 60), font=font)


def _chunk_rows(bitmap, start: int, end: int):
    """A mode-"L" image of chunks [start, end), one row each (255 = bit set
    in ``bitmap(ci)``)."""
    Image, _, _ = _require_pillow()
    data = bytearray()
    for ci in range(start, end):
        data += bitmap(ci).to_bytes(PAGES // 8, "little").translate(_REVERSE)
    return Image.frombytes("1", (PAGES, end - start), bytes(data)).convert("L")


def render_map(
    pa: PageAlloc,
    path: str | os.PathLike,
    *,
    max_rows: int = 512,
    cell_width: int = 2,
    row_height: int | None = None,
    title: str | None = None,
) -> dict:
    """Write a PNG of ``pa``'s heap to ``path`` and return a description of
    the layout (``chunks_per_row``, ``row_height``, ``size``, ``rows``: a list
    of (first chunk, y) for each drawn row, for tests and tooling)."""
    img, info = render_image(pa, max_rows=max_rows, cell_width=cell_width, row_height=row_height, title=title)
    img.save(os.fspath(path), format="PNG")
    return info


def render_image(
    pa: PageAlloc,
    *,
    max_rows: int = 512,
    cell_width: int = 2,
    row_height: int | None = None,
    title: str | None = None,
):
    """The heap map as a Pillow image, and the layout ``render_map``
    describes."""
    Image, ImageDraw, ImageFont = _require_pillow()
    from PIL import ImageChops

    font = ImageFont.load_default()
    segments = pa.grown_ranges
    total = sum(e - s for s, e in segments)
    per_row = max(1, math.ceil(total / max_rows)) if total else 1
    drawn_rows = sum(math.ceil((e - s) / per_row) for s, e in segments)
    if row_height is None:
        row_height = max(1, min(12, 720 // max(1, drawn_rows)))
    width = LABEL_WIDTH + PAGES * cell_width + 2 * MARGIN
    gaps = max(0, len(segments) - 1)
    # Pages in use and scavenged at once (Go 1.26's padding) get a legend line.
    padded = any(int(pa.chunk_bitmap(ci)) & int(pa.chunk_scavenged(ci)) for s, e in segments for ci in range(s, e))
    height = (TITLE_HEIGHT + drawn_rows * row_height + gaps * GAP_HEIGHT + LEGEND_HEIGHT + 2 * MARGIN
              + 14 * padded)
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)

    stats = pa.stats()
    head = title or f"pagealloc heap ({pa.arch})"
    draw.text((MARGIN, MARGIN), head, fill=TEXT, font=font)
    draw.text((MARGIN, MARGIN + 16), stats.summary_line(), fill=TEXT, font=font)

    ly = pa.layout
    x0 = LABEL_WIDTH + MARGIN
    y = TITLE_HEIGHT + MARGIN
    rows = []
    label_every = max(1, math.ceil(14 / row_height))
    for k, (s, e) in enumerate(segments):
        if k:
            # A hatched band for the chunks between two grown regions.
            gap = s - segments[k - 1][1]
            for gx in range(x0, x0 + PAGES * cell_width, 6):
                draw.line([(gx, y + GAP_HEIGHT - 3), (gx + 6, y + 3)], fill=GAP)
            draw.text((MARGIN, y + 2), f"... gap of {gap:#x} chunks ...", fill=TEXT, font=font)
            y += GAP_HEIGHT
        band_bits = band = _chunk_rows(pa.chunk_bitmap, s, e)
        scav_bits = scav = _chunk_rows(pa.chunk_scavenged, s, e)
        n_rows = math.ceil((e - s) / per_row)
        if per_row > 1:
            band = band.resize((PAGES, n_rows), Image.BOX)
            scav = scav.resize((PAGES, n_rows), Image.BOX)
        shaded = Image.merge(
            "RGB",
            [band.point(lambda v, f=f, u=u: round(f + (u - f) * v / 255)) for f, u in zip(FREE, IN_USE)],
        )
        # Free scavenged pages take the scavenged colour by their own
        # fraction, which keeps each row's mix. A page both in use and
        # scavenged is Go 1.26's heap-base padding (never handed out, never
        # resident): a colour of its own.
        padding = ImageChops.multiply(band_bits, scav_bits)
        if per_row > 1:
            padding = padding.resize((PAGES, n_rows), Image.BOX)
        scav_free = ImageChops.subtract(scav, padding)
        shaded = Image.composite(Image.new("RGB", shaded.size, SCAVENGED), shaded, scav_free)
        shaded = Image.composite(Image.new("RGB", shaded.size, PADDING), shaded, padding)
        img.paste(shaded.resize((PAGES * cell_width, n_rows * row_height), Image.NEAREST), (x0, y))
        for r in range(n_rows):
            ci = s + r * per_row
            rows.append((ci, y + r * row_height))
            # Label every few rows, never so close to the band's end that the
            # text would run into a gap label below.
            if r % label_every == 0 and (r == 0 or (n_rows - r) * row_height >= 12):
                draw.text((MARGIN, y + r * row_height), f"{ci:#x}  {ly.chunk_base(ci):#x}", fill=TEXT, font=font)
        y += n_rows * row_height

    # Legend and scale.
    y += 6
    draw.rectangle([MARGIN, y, MARGIN + 10, y + 10], fill=IN_USE)
    draw.text((MARGIN + 14, y), "in use", fill=TEXT, font=font)
    draw.rectangle([MARGIN + 70, y, MARGIN + 80, y + 10], fill=FREE, outline=TEXT)
    draw.text((MARGIN + 84, y), "free", fill=TEXT, font=font)
    draw.rectangle([MARGIN + 120, y, MARGIN + 130, y + 10], fill=SCAVENGED)
    draw.text((MARGIN + 134, y), "scavenged", fill=TEXT, font=font)
    scale = f"1 row = {per_row} chunk{'s' if per_row > 1 else ''} (4 MiB  each), 1 column = 1 page (8 KiB)"
    draw.text((MARGIN + 210, y), scale, fill=TEXT, font=font)
    if padded:
        y += 14
        draw.rectangle([MARGIN, y, MARGIN + 10, y + 10], fill=PADDING)
        draw.text((MARGIN + 14, y), "in use and scavenged: Go 1.26's heap-base padding", fill=TEXT, font=font)
    return img, {
        "chunks_per_row": per_row,
        "row_height": row_height,
        "cell_width": cell_width,
        "x0": x0,
        "size": img.size,
        "rows": rows,
    }
