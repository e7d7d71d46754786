// A prediction on screen: "Looks like X (93%)" or "None of these", and one confidence bar per class in the
// class's colour. Shared by the project page's Try-it panel and the public share page.
import { percent } from "./ui.js";

// A class the page has no colour for (renamed since the model was trained, or a page that was given none).
export const NEUTRAL_COLOR = "#6b7280";
// Names longer than this are cut in the middle on one line: the start and the end stay readable (two
// classes often differ only at the end: "cat photo, indoor" / "cat photo, outdoor").
const TAIL_CHARS = 10;
const STACK_CHARS = 16;

// label -> CSS colour, from a project's classes ([{name, color}]) or an object {label: colour}.
export function colorMap(source) {
  if (!source) return new Map();
  if (source instanceof Map) return source;
  if (Array.isArray(source)) return new Map(source.filter((c) => c && c.color).map((c) => [c.name, c.color]));
  return new Map(Object.entries(source));
}

// A class name that never pushes what follows it off screen: on one line, its middle replaced by "…" when
// the space is short (CSS: .name-cut). The whole name stays in the text for screen readers and in `title`.
export function nameNode(label, tag = "span") {
  const node = document.createElement(tag);
  node.className = "name-cut";
  node.title = label;
  const chars = [...label]; // by code point: an emoji is not cut in half
  if (chars.length <= TAIL_CHARS + 2) {
    node.append(Object.assign(document.createElement("span"), { className: "name-cut-head", textContent: label }));
    return node;
  }
  node.append(
    Object.assign(document.createElement("span"), {
      className: "name-cut-head", textContent: chars.slice(0, -TAIL_CHARS).join(""),
    }),
    Object.assign(document.createElement("span"), {
      className: "name-cut-tail", textContent: chars.slice(-TAIL_CHARS).join(""),
    }),
  );
  return node;
}

// `unknown`: the photo is unlike the training images ("none of these"), whatever the top score says.
// The name wraps onto as many lines as it needs; the percentage never sits over it.
export function renderTop(top, result, unknown) {
  const [best] = result.predictions;
  const strong = (text) => Object.assign(document.createElement("strong"), { className: "top-name", textContent: text });
  const score = (text) => Object.assign(document.createElement("span"), { className: "top-score", textContent: text });
  if (unknown) {
    const closest = Object.assign(document.createElement("span"), { className: "closest" });
    closest.append("closest: ", Object.assign(document.createElement("span"), {
      className: "closest-name", textContent: best.label,
    }), " ", score(percent(best.score, 0)));
    closest.dataset.testid = "predict-closest";
    top.replaceChildren(strong("None of these"), " ", closest);
  } else {
    top.replaceChildren("Looks like ", strong(best.label), " ", score(`(${percent(best.score)})`));
  }
  top.dataset.label = best.label;
  top.dataset.unknown = String(unknown);
  top.hidden = false;
}

// One bar per class. `order`: labels in the order to show them (a live view keeps them in place);
// otherwise by score. `colors`: label -> colour (see colorMap). Bars are reused, so widths animate.
export function renderBars(list, result, unknown, { colors = null, order = null } = {}) {
  const palette = colorMap(colors);
  const scores = new Map(result.predictions.map((p) => [p.label, p.score]));
  const best = result.predictions[0].label;
  const labels = order && order.length === scores.size && order.every((l) => scores.has(l))
    ? order : result.predictions.map((p) => p.label);
  const old = new Map([...list.children].map((li) => [li.dataset.label, li]));
  list.replaceChildren(...labels.map((label) => {
    const li = old.get(label) || bar(label);
    update(li, scores.get(label), label === best, palette.size ? palette.get(label) || NEUTRAL_COLOR : null);
    return li;
  }));
  list.dataset.unknown = String(unknown);
  // Long names get a line of their own above their bar, all bars alike so they still line up.
  list.classList.toggle("bars-stacked", labels.some((label) => [...label].length > STACK_CHARS));
}

function bar(label) {
  const li = document.createElement("li");
  li.className = "bar";
  li.dataset.testid = "confidence-bar";
  li.dataset.label = label;
  const name = nameNode(label);
  name.classList.add("bar-label");
  const track = document.createElement("div");
  track.className = "bar-track";
  track.setAttribute("role", "meter");
  track.setAttribute("aria-label", `Confidence for ${label}`);
  track.setAttribute("aria-valuemin", "0");
  track.setAttribute("aria-valuemax", "100");
  const fill = document.createElement("div");
  fill.className = "bar-fill";
  track.append(fill);
  const value = document.createElement("span");
  value.className = "bar-value";
  li.append(name, track, value);
  return li;
}

function update(li, score, isTop, color) {
  li.classList.toggle("bar-top", isTop);
  // A custom property set through the CSSOM: allowed by the CSP, which forbids inline style attributes.
  if (color) li.style.setProperty("--bar-color", color);
  else li.style.removeProperty("--bar-color");
  li.classList.toggle("has-color", Boolean(color));
  li.querySelector(".bar-track").setAttribute("aria-valuenow", (score * 100).toFixed(1));
  li.querySelector(".bar-fill").style.width = percent(score);
  li.querySelector(".bar-value").textContent = percent(score);
}
