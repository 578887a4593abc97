// Drawing what "Your data" shows: search snippets with their matches marked, and the usage chart.
// Plain DOM and SVG, built from text nodes: nothing the API returns is ever parsed as markup.

const SVG = "http://www.w3.org/2000/svg";

/** A snippet as text with each `[start, end]` of `highlights` (UTF-16 offsets) in a <mark>. */
export function snippetNodes(snippet, highlights) {
  const nodes = [];
  let at = 0;
  for (const [start, end] of highlights) {
    if (start < at) continue;
    nodes.push(document.createTextNode(snippet.slice(at, start)));
    const mark = document.createElement("mark");
    mark.textContent = snippet.slice(start, end);
    nodes.push(mark);
    at = end;
  }
  nodes.push(document.createTextNode(snippet.slice(at)));
  return nodes;
}

/**
 * One bar per UTC day, oldest on the left (the API lists newest first), as tall as the day's prompts
 * against the busiest day; each bar's <title> says the day's figures.
 */
export function drawUsageChart(svg, days) {
  const width = 300;
  const height = 80;
  const slot = width / Math.max(days.length, 1);
  const most = Math.max(1, ...days.map((day) => day.prompts));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const bars = [...days].reverse().map((day, i) => {
    const bar = document.createElementNS(SVG, "rect");
    const tall = day.prompts ? Math.max(2, (day.prompts / most) * (height - 4)) : 1;
    bar.setAttribute("x", String(i * slot + 1));
    bar.setAttribute("width", String(Math.max(slot - 2, 1)));
    bar.setAttribute("y", String(height - tall));
    bar.setAttribute("height", String(tall));
    bar.classList.toggle("empty", day.prompts === 0);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${day.date}: ${day.prompts} prompts, ${day.promptTokens + day.outputTokens} tokens`;
    bar.append(title);
    return bar;
  });
  const label = svg.querySelector(":scope > title");
  svg.replaceChildren(...(label ? [label] : []), ...bars);
}

/** The file name a Content-Disposition header gives, or `fallback`. */
export function attachmentName(header, fallback) {
  return /filename="([^"]+)"/.exec(header ?? "")?.[1] ?? fallback;
}
