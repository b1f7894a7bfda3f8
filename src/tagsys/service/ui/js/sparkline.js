// A small inline SVG trend line of a tag's members after each run (oldest to newest).

import { svg } from "./dom.js";

const WIDTH = 96;
const HEIGHT = 24;
const PAD = 2;

export function sparkline(values, label) {
  const points = values.filter((v) => v !== null && v !== undefined);
  const root = svg("svg", {
    class: "spark",
    width: WIDTH,
    height: HEIGHT,
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": label,
  });
  root.append(svg("title", null, label));
  if (points.length < 2) {
    root.append(svg("line", { x1: PAD, y1: HEIGHT / 2, x2: WIDTH - PAD, y2: HEIGHT / 2, class: "spark-flat" }));
    return root;
  }
  const low = Math.min(...points);
  const high = Math.max(...points);
  const span = high - low || 1;
  const step = (WIDTH - 2 * PAD) / (points.length - 1);
  const coords = points.map((v, i) => {
    const x = PAD + i * step;
    const y = HEIGHT - PAD - ((v - low) / span) * (HEIGHT - 2 * PAD);
    return [x.toFixed(1), (high === low ? HEIGHT / 2 : y).toFixed(1)];
  });
  root.append(svg("polyline", { points: coords.map((c) => c.join(",")).join(" "), class: "spark-line" }));
  const [lastX, lastY] = coords[coords.length - 1];
  root.append(svg("circle", { cx: lastX, cy: lastY, r: 2, class: "spark-dot" }));
  return root;
}
