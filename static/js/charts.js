// Small SVG line charts, drawn at the width of their container (text stays readable on a phone).
// No library: axes, gridlines, lines with gaps for missing values, vertical markers, an HTML legend.

const NS = "http://www.w3.org/2000/svg";
const PAD = { top: 18, right: 16, bottom: 38, left: 48 };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

// About `count` round tick values covering [lo, hi].
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function integerTicks(lo, hi, max = 8) {
  const span = Math.max(1, hi - lo);
  const step = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500].find((s) => span / s <= max) || Math.ceil(span / max);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) ticks.push(v);
  if (ticks[0] !== lo && lo % 1 === 0 && (ticks[0] - lo) >= step / 2) ticks.unshift(lo);
  return ticks;
}

function describe(spec) {
  const parts = spec.series.map((s) => {
    const ys = s.values.filter((p) => p.y !== null && p.y !== undefined);
    if (!ys.length) return `${s.name}: no values`;
    const fmt = spec.yFormat || ((v) => v.toFixed(2));
    return `${s.name} from ${fmt(ys[0].y)} to ${fmt(ys[ys.length - 1].y)}`;
  });
  const marks = (spec.markers || []).map((m) => m.label).filter(Boolean);
  return [spec.title, parts.join("; "), ...marks].filter(Boolean).join(". ") + ".";
}

// Draw `spec` into an <svg> of the given width. Returns the svg element.
export function renderLineChart(spec, width) {
  const height = spec.height || 220;
  const w = Math.max(220, width);
  const labelled = (spec.markers || []).filter((m) => m.short).length;
  const pad = { ...PAD, top: PAD.top + 13 * labelled, ...(spec.pad || {}) };
  const innerW = w - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const all = spec.series.flatMap((s) => s.values);
  const xs = all.map((p) => p.x);
  const ysRaw = all.map((p) => p.y).filter((y) => y !== null && y !== undefined && Number.isFinite(y));
  const [x0, x1] = spec.xDomain || [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = spec.yDomain || [Math.min(0, ...ysRaw), Math.max(...ysRaw, 1e-6)];
  const yTicks = spec.yTicks || niceTicks(y0, y1, spec.yTickCount || 4);
  if (!spec.yDomain) y1 = Math.max(y1, yTicks[yTicks.length - 1]);
  const sx = (x) => pad.left + (x1 === x0 ? innerW / 2 : ((x - x0) / (x1 - x0)) * innerW);
  const sy = (y) => pad.top + innerH - ((y - y0) / (y1 - y0 || 1)) * innerH;
  const fmtY = spec.yFormat || ((v) => String(v));
  const fmtX = spec.xFormat || ((v) => String(v));

  const svg = el("svg", {
    class: "chart-svg", width: w, height, viewBox: `0 0 ${w} ${height}`, role: "img",
    "aria-label": spec.ariaLabel || describe(spec),
  });
  svg.append(el("title", {}, spec.title || "Chart"), el("desc", {}, describe(spec)));

  const grid = el("g", { class: "chart-grid" });
  for (const t of yTicks) {
    const y = sy(t);
    grid.append(el("line", { x1: pad.left, x2: pad.left + innerW, y1: y, y2: y }));
    grid.append(el("text", { x: pad.left - 8, y: y + 4, "text-anchor": "end", class: "chart-tick" }, fmtY(t)));
  }
  const xTicks = spec.xTicks || integerTicks(x0, x1, Math.max(2, Math.floor(innerW / 56)));
  for (const t of xTicks) {
    const x = sx(t);
    grid.append(el("line", { x1: x, x2: x, y1: pad.top + innerH, y2: pad.top + innerH + 5, class: "chart-tickmark" }));
    grid.append(el("text", { x, y: pad.top + innerH + 18, "text-anchor": "middle", class: "chart-tick" }, fmtX(t)));
  }
  grid.append(el("line", { x1: pad.left, x2: pad.left + innerW, y1: pad.top + innerH, y2: pad.top + innerH,
    class: "chart-axis" }));
  if (spec.xLabel) {
    grid.append(el("text", { x: pad.left + innerW / 2, y: height - 4, "text-anchor": "middle", class: "chart-label" },
      spec.xLabel));
  }
  svg.append(grid);

  // Vertical markers (phase boundary, best epoch) under the lines.
  const marks = el("g", { class: "chart-markers" });
  for (const m of spec.markers || []) {
    const x = sx(m.x);
    const g = el("g", { class: `chart-marker marker-${m.kind || "plain"}` });
    g.append(el("line", { x1: x, x2: x, y1: pad.top - 6 - (m.row || 0) * 13 - 8, y2: pad.top + innerH }));
    if (m.short) {
      const anchor = x > pad.left + innerW * 0.75 ? "end" : "start";
      g.append(el("text", { x: anchor === "end" ? x - 4 : x + 4, y: pad.top - 8 - (m.row || 0) * 13,
        "text-anchor": anchor, class: "chart-marker-text" }, m.short));
    }
    marks.append(g);
  }
  svg.append(marks);

  spec.series.forEach((s, i) => {
    const g = el("g", { class: `chart-series series-${s.color ?? i}${s.dashed ? " is-dashed" : ""}`,
      "data-series": s.name });
    // A class's own colour (ClassOut color) over the palette slot; CSSOM, so the CSP's style-src still holds.
    if (s.hex) g.style.setProperty("--c", s.hex);
    let d = "";
    let pen = false;
    for (const p of s.values) {
      if (p.y === null || p.y === undefined || !Number.isFinite(p.y)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`;
      pen = true;
    }
    if (d) g.append(el("path", { d, class: "chart-line" }));
    const dots = s.values.length <= 40 || s.dots;
    for (const p of s.values) {
      if (p.y === null || p.y === undefined || !Number.isFinite(p.y)) continue;
      const dot = el("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: dots ? 3 : 0,
        class: "chart-dot" });
      dot.append(el("title", {}, `${s.name}, ${spec.xName || "x"} ${fmtX(p.x)}: ${(spec.yTooltip || fmtY)(p.y)}`));
      g.append(dot);
    }
    svg.append(g);
  });
  return svg;
}

function legend(spec) {
  const list = document.createElement("ul");
  list.className = "chart-legend";
  spec.series.forEach((s, i) => {
    const item = document.createElement("li");
    item.className = `series-${s.color ?? i}${s.dashed ? " is-dashed" : ""}`;
    if (s.hex) item.style.setProperty("--c", s.hex);
    const swatch = document.createElement("span");
    swatch.className = "chart-swatch";
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(s.name));
    list.append(item);
  });
  for (const m of spec.markers || []) {
    if (!m.label) continue;
    const item = document.createElement("li");
    item.className = `legend-marker marker-${m.kind || "plain"}`;
    const swatch = document.createElement("span");
    swatch.className = "chart-swatch";
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, document.createTextNode(m.label));
    list.append(item);
  }
  return list;
}

// Put a chart into `container` and keep it sized to the container's width.
export function mountLineChart(container, spec) {
  container.replaceChildren();
  const plot = document.createElement("div");
  plot.className = "chart-plot";
  container.append(plot, legend(spec));
  let lastWidth = -1;
  const draw = () => {
    const width = Math.floor(plot.clientWidth);
    if (width <= 0 || width === lastWidth) return;
    lastWidth = width;
    plot.replaceChildren(renderLineChart(spec, width));
  };
  if (container._chartObserver) container._chartObserver.disconnect();
  const observer = new ResizeObserver(draw);
  observer.observe(plot);
  container._chartObserver = observer;
  draw();
  return plot;
}
