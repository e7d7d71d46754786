// A prediction on screen: "Looks like X (93%)" or "None of these", and one confidence bar per class.
// Shared by the project page's Try-it panel and the public share page.
import { percent } from "./ui.js";

// `unknown`: the photo is unlike the training images ("none of these"), whatever the top score says.
export function renderTop(top, result, unknown) {
  const [best] = result.predictions;
  const strong = (text) => Object.assign(document.createElement("strong"), { textContent: text });
  if (unknown) {
    const closest = Object.assign(document.createElement("span"), {
      className: "closest", textContent: `closest: ${best.label} ${percent(best.score, 0)}`,
    });
    closest.dataset.testid = "predict-closest";
    top.replaceChildren(strong("None of these"), " ", closest);
  } else {
    top.replaceChildren("Looks like ", strong(best.label), ` (${percent(best.score)})`);
  }
  top.dataset.label = best.label;
  top.dataset.unknown = String(unknown);
  top.hidden = false;
}

export function renderBars(list, result, unknown) {
  list.replaceChildren(...result.predictions.map((p, i) => bar(p, i === 0)));
  list.dataset.unknown = String(unknown);
}

function bar(prediction, isTop) {
  const li = document.createElement("li");
  li.className = `bar${isTop ? " bar-top" : ""}`;
  li.dataset.testid = "confidence-bar";
  li.dataset.label = prediction.label;
  const name = document.createElement("span");
  name.className = "bar-label";
  name.textContent = prediction.label;
  const track = document.createElement("div");
  track.className = "bar-track";
  track.setAttribute("role", "meter");
  track.setAttribute("aria-label", `Confidence for ${prediction.label}`);
  track.setAttribute("aria-valuemin", "0");
  track.setAttribute("aria-valuemax", "100");
  track.setAttribute("aria-valuenow", (prediction.score * 100).toFixed(1));
  const fill = document.createElement("div");
  fill.className = "bar-fill";
  fill.style.width = percent(prediction.score);
  track.append(fill);
  const value = document.createElement("span");
  value.className = "bar-value";
  value.textContent = percent(prediction.score);
  li.append(name, track, value);
  return li;
}
