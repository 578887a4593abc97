// Where a Worker isolate's CPU goes: a V8 sampling profile taken through workerd's inspector while
// something runs, its samples charged to the source file (and function) they were in, through the
// bundle's source map. `npm run bench -- --only=profile` uses it to set our hot reads beside their
// binding floor (bench/floor.ts): per request, which files take the CPU that the floor does not spend.
import { readFileSync } from "node:fs";
import { inspect } from "./inspector.mjs";

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** One source map line's segments as [generated column, source index, source line, source column]. */
function decodeLine(text, state) {
  const segments = [];
  for (const segment of text.split(",")) {
    if (!segment) continue;
    const values = [];
    let value = 0;
    let shift = 0;
    for (const char of segment) {
      const digit = BASE64.indexOf(char);
      value += (digit & 31) << shift;
      if (digit & 32) shift += 5;
      else {
        values.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0;
        shift = 0;
      }
    }
    state.column += values[0];
    if (values.length >= 4) {
      state.source += values[1];
      state.line += values[2];
      state.sourceColumn += values[3];
    }
    segments.push([state.column, state.source, state.line, state.sourceColumn]);
  }
  return segments;
}

/**
 * A lookup from a generated (0-based) line and column of the bundle to its source file and line, or
 * undefined where the map says nothing (code esbuild wrote itself).
 */
export function sourceMapLookup(mapPath) {
  const map = JSON.parse(readFileSync(mapPath, "utf8"));
  const state = { source: 0, line: 0, sourceColumn: 0, column: 0 };
  const lines = map.mappings.split(";").map((text) => {
    state.column = 0;
    return decodeLine(text, state);
  });
  const shortName = (source) =>
    source
      .replace(/^(\.\.\/)+/, "")
      .replace(/^.*node_modules\//, "nm/")
      .replace(/^\.\//, "");
  return (line, column) => {
    const segments = lines[line] ?? [];
    let found;
    for (const segment of segments) {
      if (segment[0] > column) break;
      found = segment;
    }
    found ??= segments[0];
    return found ? { file: shortName(map.sources[found[1]]), line: found[2] + 1 } : undefined;
  };
}

/** The isolate's CPU profile while `during()` runs, and what `during` returned. */
export async function profileWhile(inspectorPort, during, { isolate = "core:user:", intervalUs = 100 } = {}) {
  const session = await inspect(inspectorPort, isolate);
  try {
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await session.send("Profiler.start");
    const result = await during();
    const { profile } = await session.send("Profiler.stop");
    return { profile, result };
  } finally {
    session.close();
  }
}

/**
 * A profile's busy time (idle excluded) in microseconds, in all and by the file and by the function its
 * samples were in (self time). Frames outside the bundle are charged to their script (the runtime's JS,
 * `cloudflare-internal:…`) or, for the runtime's native functions, to their name in brackets.
 */
export function chargeSamples(profile, lookup, bundleName) {
  const isBundle = (url) => url.endsWith(bundleName);
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  const sourceOf = (frame) =>
    frame.url && isBundle(frame.url) && frame.lineNumber >= 0
      ? lookup(frame.lineNumber, frame.columnNumber)
      : undefined;
  const nameOf = (frame) => {
    const source = sourceOf(frame);
    return `${frame.functionName || "(anonymous)"}${source ? ` ${source.file}:${source.line}` : frame.url ? ` ${frame.url}` : ""}`;
  };
  const byFile = new Map();
  const byFunction = new Map();
  let busy = 0;
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  const interval = [...profile.timeDeltas].sort((a, b) => a - b)[profile.timeDeltas.length >> 1] ?? 100;
  profile.samples.forEach((id, index) => {
    const frame = nodes.get(id).callFrame;
    if (frame.functionName === "(idle)") return;
    // A long gap before the next sample is time the thread was not scheduled, not time spent here.
    const us = Math.min(profile.timeDeltas[index + 1] ?? interval, 10 * interval);
    busy += us;
    const source = sourceOf(frame);
    const file = source?.file ?? `[${frame.url || frame.functionName || "anonymous"}]`;
    add(byFile, file, us);
    // A runtime function with no source of its own (a Headers get, a Response) is named with its caller.
    const parent = parents.get(id);
    const caller = !frame.url && parent ? ` ← ${nameOf(parent.callFrame)}` : "";
    add(byFunction, `${nameOf(frame)}${caller}`, us);
  });
  return { busy, byFile, byFunction };
}
