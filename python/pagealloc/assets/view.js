// pagealloc view: one recording's heap over time, offline, in one page.
// The data is embedded by `pagealloc view` (pagealloc/view.py): a JSON
// summary and a gzip'd blob of little-endian arrays (see pagealloc::view).
// Everything that came from the trace or the command line is set as text.
"use strict";

(function () {
  const COLORS = ["#e9f0e8", "#1f4e9c", "#dec48c", "#966ea0"]; // free, in use, scavenged, padding
  const STATE_NAMES = ["free", "in use", "free and scavenged (released)", "heap-base padding (in use, never touched)"];
  const RGB = [[233, 240, 232], [31, 78, 156], [222, 196, 140], [150, 110, 160]];
  const PAGES = 512, PAGE = 8192;

  function text(id, s) { document.getElementById(id).textContent = s; }
  function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }
  function hex(b) { return "0x" + b.toString(16); }

  async function decode() {
    const meta = JSON.parse(document.getElementById("pagealloc-summary").textContent);
    const b64 = document.getElementById("pagealloc-data").textContent.trim();
    const bin = atob(b64);
    const gz = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) gz[i] = bin.charCodeAt(i);
    const stream = new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"));
    const buf = await new Response(stream).arrayBuffer();
    const arrays = {};
    const kinds = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, f64: Float64Array, u64: BigUint64Array };
    for (const [name, [off, len, kind]] of Object.entries(meta.arrays)) {
      const T = kinds[kind];
      arrays[name] = new T(buf, off, len / T.BYTES_PER_ELEMENT);
    }
    return { meta, a: arrays };
  }

  function start({ meta, a }) {
    const n = meta.ops;
    const every = meta.keyframe_every;
    const times = a.times || null; // seconds per op, when the trace has times
    const xOf = times ? (i) => times[i] : (i) => i + 1;
    const xMax = n ? xOf(n - 1) : 1;
    const series = [
      { key: "in_use", label: "in use", color: "#1f4e9c", scale: PAGE },
      { key: "free_resident", label: "free, resident", color: "#5f9e6e", scale: PAGE },
      { key: "released", label: "released (scavenged)", color: "#b8893a", scale: PAGE },
    ];
    for (const c of meta.configs) {
      series.push({ key: c.key, label: c.label, color: c.color, scale: 1024 });
    }

    // --- the timeline: per pixel column, the least and most of its ops ---
    let view = [times ? 0 : 0, xMax];
    const plotEl = document.getElementById("timeline");
    let current = -1; // the op the heap map shows (ops done)
    const width = Math.max(400, plotEl.clientWidth - 20);
    let cols = [];

    function firstOpAtOrAfter(x) { // smallest op with xOf(op) >= x
      let lo = 0, hi = n;
      while (lo < hi) { const m = (lo + hi) >> 1; if (xOf(m) < x) lo = m + 1; else hi = m; }
      return lo;
    }
    function buckets() {
      const w = Math.max(50, Math.floor(width));
      const [x0, x1] = view;
      const xs = [], data = series.map(() => [[], []]);
      cols = [];
      for (let c = 0; c < w; c++) {
        const lo = x0 + (x1 - x0) * c / w, hi = x0 + (x1 - x0) * (c + 1) / w;
        const i0 = firstOpAtOrAfter(lo), i1 = c === w - 1 ? firstOpAtOrAfter(hi + 1e-12) : firstOpAtOrAfter(hi);
        if (i1 <= i0) continue;
        // Two points a column: its ops' least and most at its middle, then
        // the value its last op left at its right edge, which holds until
        // the next op (so an idle gap draws the state it held, not a range).
        xs.push((lo + hi) / 2, hi);
        cols.push([i0, i1]);
        series.forEach((s, k) => {
          const arr = a[s.key];
          let mn = Infinity, mx = -Infinity;
          for (let i = i0; i < i1; i++) { const v = arr[i]; if (v < mn) mn = v; if (v > mx) mx = v; }
          const last = arr[i1 - 1] * s.scale / 1048576;
          data[k][0].push(mn * s.scale / 1048576, last);
          data[k][1].push(mx * s.scale / 1048576, last);
        });
      }
      const out = [xs];
      data.forEach(([mn, mx]) => { out.push(mx); out.push(mn); });
      return out;
    }
    const uSeries = [{ label: times ? "seconds" : "op" }];
    const bands = [];
    series.forEach((s, k) => {
      // Stepped: a value holds from one op to the next (idle time stays flat).
      const paths = uPlot.paths.stepped({ align: 1 });
      uSeries.push({ label: s.label + " (most)", stroke: s.color, width: 1, points: { show: false }, paths });
      uSeries.push({ label: s.label + " (least)", stroke: s.color, width: 1, points: { show: false }, paths });
      bands.push({ series: [1 + 2 * k, 2 + 2 * k], fill: s.color + "55" });
    });
    const opts = {
      width, height: 300,
      scales: { x: { time: false } },
      axes: [{ label: times ? "seconds since the recording began" : "op" }, { label: "MiB" }],
      series: uSeries,
      bands,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const x0 = u.posToVal(u.select.left, "x"), x1 = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ width: 0, height: 0 }, false);
          zoom(x0, x1);
        }],
        setCursor: [(u) => showHover(u)],
        // The op the heap map shows, as a line across the chart.
        draw: [(u) => {
          if (current < 1) return;
          const x = Math.round(u.valToPos(xOf(current - 1), "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          const c = u.ctx;
          c.save();
          c.strokeStyle = "#222";
          c.setLineDash([4, 3]);
          c.beginPath();
          c.moveTo(x, u.bbox.top);
          c.lineTo(x, u.bbox.top + u.bbox.height);
          c.stroke();
          c.restore();
        }],
      },
    };
    const plot = new uPlot(opts, buckets(), plotEl);
    const key = document.getElementById("series");
    for (const s of series) {
      const sw = document.createElement("span");
      sw.style.background = s.color;
      key.append(sw, document.createTextNode(s.label));
    }
    function zoom(x0, x1) {
      const full = [0, xMax];
      view = [Math.max(full[0], Math.min(x0, x1)), Math.min(full[1], Math.max(x0, x1))];
      if (view[1] - view[0] <= 0) view = full;
      plot.setData(buckets());
    }
    plot.over.addEventListener("dblclick", () => zoom(0, xMax));
    plot.over.addEventListener("wheel", (e) => {
      e.preventDefault();
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        pan(Math.sign(e.deltaX || e.deltaY) * 0.1);
        return;
      }
      const x = plot.posToVal(e.offsetX, "x");
      const f = e.deltaY > 0 ? 1.25 : 0.8;
      zoom(x - (x - view[0]) * f, x + (view[1] - x) * f);
    }, { passive: false });
    // Pan: shift+wheel or a horizontal wheel, or the arrow keys (a tenth of
    // the view a step), never past either end.
    function pan(frac) {
      const w = view[1] - view[0];
      let x0 = view[0] + w * frac;
      x0 = Math.max(0, Math.min(xMax - w, x0));
      zoom(x0, x0 + w);
    }
    document.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft") pan(-0.1);
      else if (e.key === "ArrowRight") pan(0.1);
    });
    let down = null;
    plot.over.addEventListener("mousedown", (e) => { down = e.offsetX; });
    plot.over.addEventListener("mouseup", (e) => {
      if (down !== null && Math.abs(e.offsetX - down) < 3) {
        seek(opAtX(plot.posToVal(e.offsetX, "x")));
      }
      down = null;
    });
    function opAtX(x) { // ops done by x: the state after the last op at or before it
      return Math.max(0, Math.min(n, firstOpAtOrAfter(x + 1e-12)));
    }
    function showHover(u) {
      const left = u.cursor.left;
      if (left == null || left < 0) { text("hover", ""); return; }
      const k = opAtX(u.posToVal(left, "x"));
      if (k === 0) { text("hover", "before the first op"); return; }
      const i = k - 1;
      const parts = ["op " + k.toLocaleString()];
      if (times) parts.push(times[i].toFixed(6) + " s");
      series.forEach((s) => parts.push(s.label + " " + mib(a[s.key][i] * s.scale)));
      text("hover", parts.join(" \u00b7 "));
    }

    // --- the heap map at the cursor ---
    const canvas = document.getElementById("map");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const slots = a.slot_chunk.length;
    let states = [];
    let rows = [];
    const cellW = 2;
    let rowH = 4;

    function seek(k) {
      k = Math.max(0, Math.min(n, k | 0));
      const kf = Math.floor(k / every);
      const have = a.keyframe_slots[kf];
      let off = 0;
      for (let f = 0; f < kf; f++) off += a.keyframe_slots[f] * 128;
      states = [];
      for (let s = 0; s < slots; s++) {
        const st = new Uint8Array(PAGES);
        if (s < have) {
          const base = off + s * 128;
          for (let b = 0; b < 128; b++) {
            const byte = a.keyframes[base + b];
            st[4 * b] = byte & 3; st[4 * b + 1] = (byte >> 2) & 3; st[4 * b + 2] = (byte >> 4) & 3; st[4 * b + 3] = byte >> 6;
          }
        } else {
          st.fill(2);
        }
        states.push(st);
      }
      for (let op = kf * every; op < k; op++) {
        for (let r = a.op_runs[op]; r < a.op_runs[op + 1]; r++) {
          states[a.run_slot[r]].fill(a.run_state[r], a.run_page[r], a.run_page[r] + a.run_len[r]);
        }
      }
      current = k;
      draw();
      plot.redraw(false);
      const t = k > 0 && times ? " (" + times[k - 1].toFixed(6) + " s)" : "";
      text("cursor", "heap after op " + k.toLocaleString() + " of " + n.toLocaleString() + t);
      text("span", "");
    }
    function draw() {
      rows = [];
      for (let s = 0; s < slots; s++) if (a.slot_op[s] <= current) rows.push(s);
      rows.sort((x, y) => (a.slot_chunk[x] < a.slot_chunk[y] ? -1 : 1));
      rowH = Math.max(1, Math.min(8, Math.floor(640 / Math.max(1, rows.length))));
      canvas.width = PAGES * cellW;
      canvas.height = Math.max(1, rows.length * rowH);
      const img = ctx.createImageData(canvas.width, canvas.height);
      const d = img.data;
      rows.forEach((s, r) => {
        const st = states[s];
        for (let y = r * rowH; y < (r + 1) * rowH; y++) {
          for (let p = 0; p < PAGES; p++) {
            const c = RGB[st[p]];
            for (let x = p * cellW; x < (p + 1) * cellW; x++) {
              const o = (y * canvas.width + x) * 4;
              d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = 255;
            }
          }
        }
      });
      ctx.putImageData(img, 0, 0);
    }
    function pageAt(e) {
      const rect = canvas.getBoundingClientRect();
      const x = (e.clientX - rect.left) * canvas.width / rect.width;
      const y = (e.clientY - rect.top) * canvas.height / rect.height;
      const r = Math.floor(y / rowH), p = Math.floor(x / cellW);
      if (r < 0 || r >= rows.length || p < 0 || p >= PAGES) return null;
      return { slot: rows[r], page: p };
    }
    function addressOf(slot, page) { return a.slot_base[slot] + BigInt(page * PAGE); }
    canvas.addEventListener("mousemove", (e) => {
      const at = pageAt(e);
      if (!at) { text("page", ""); return; }
      const st = states[at.slot][at.page];
      text("page", "page " + hex(addressOf(at.slot, at.page)) + " (chunk " + hex(a.slot_chunk[at.slot]) +
        ", page " + at.page + "): " + STATE_NAMES[st]);
    });
    canvas.addEventListener("click", (e) => {
      const at = pageAt(e);
      if (!at) return;
      text("span", spanText(at.slot, at.page));
    });
    function spanText(slot, page) {
      for (let i = 0; i < a.alloc_op.length; i++) {
        if (a.alloc_slot[i] !== slot || a.alloc_op[i] >= current) continue;
        const p0 = a.alloc_page[i], np = a.alloc_pages[i];
        if (page < p0 || page >= p0 + np) continue;
        const freed = a.free_op[i];
        if (freed !== 0xffffffff && freed < current) continue;
        const when = (op) => "op " + (op + 1).toLocaleString() + (times ? " (" + times[op].toFixed(6) + " s)" : "");
        return "span " + hex(addressOf(slot, p0)) + ", " + np + " page(s): allocated by " + when(a.alloc_op[i]) +
          (freed === 0xffffffff ? ", never freed" : ", freed by " + when(freed));
      }
      return "page " + hex(addressOf(slot, page)) + ": no span (free, or held by a page cache or the scavenger)";
    }

    window.pageallocView = {
      meta, seek,
      xAxis: opts.axes[0].label,
      op: () => current,
      pageState: (chunk, page) => {
        for (let s = 0; s < slots; s++) if (a.slot_chunk[s] === BigInt(chunk)) return a.slot_op[s] <= current ? states[s][page] : null;
        return null;
      },
      rowOf: (chunk) => rows.findIndex((s) => a.slot_chunk[s] === BigInt(chunk)),
      cell: { width: cellW, height: () => rowH },
      drawnPeakInUseBytes: () => Math.max(...plot.data[1]) * 1048576,
      zoom, pan,
      range: () => view.slice(),
      spanText,
      ready: true,
    };
    seek(n);
  }

  function summary(meta) {
    text("title", meta.title);
    document.title = meta.title + " - pagealloc view";
    text("source", meta.source);
    const dl = document.getElementById("summary");
    const rows = [
      ["ops", meta.ops.toLocaleString()],
      ["duration", meta.duration_s == null ? "no times (ops only)" : meta.duration_s.toFixed(6) + " s"],
      ["peak in use", mib(meta.peak_in_use_bytes)],
      ["final in use", mib(meta.final_in_use_bytes)],
      ["peak RSS", mib(meta.peak_rss_bytes)],
      ["largest free run (final)", mib(meta.largest_free_run_bytes)],
      ["external fragmentation (final)", meta.external_fragmentation.toFixed(4)],
      ["Go", meta.go + (meta.machine ? ", " + meta.machine : "")],
    ];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
    const pre = document.getElementById("comments");
    pre.textContent = meta.comments.join("\n");
  }

  window.addEventListener("DOMContentLoaded", () => {
    decode().then((d) => { summary(d.meta); start(d); }).catch((e) => {
      text("cursor", "could not read this page's data: " + e);
      throw e;
    });
  });
})();
