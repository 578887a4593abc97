// Finds import cycles among the project's own TypeScript files. Pure (no file system): test/imports.test.ts
// feeds it src/ through Vite's import.meta.glob inside workerd, tools/check-cycles.ts from the disk.
//
// Every import counts, `import type` included: a cycle of types is still two features that cannot be
// understood (or moved) one without the other. A dynamic import() is an edge like the others; the lazy
// loading in src/index.ts and src/app.ts only ever points down (entry → app → features), so it is in no
// cycle, and one that closed a circle would be reported like any other.

export type ImportKind = "static" | "dynamic";
export type ImportEdge = { from: string; to: string; kind: ImportKind };
export type ImportCycle = {
  /** Every file of the strongly connected component, sorted. */
  files: string[];
  /** One shortest circle through the component's first file, that file repeated at the end. */
  path: string[];
  /** Whether a dynamic import() is one of the circle's steps. */
  throughDynamicImport: boolean;
};

/** The source with its comments blanked, strings, templates and regular expressions kept as they are. */
export function stripComments(source: string): string {
  let out = "";
  let i = 0;
  // What the last significant character was decides whether a slash opens a regular expression.
  let last = "";
  const templateDepth: number[] = [];
  let braces = 0;
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
      last = c;
      continue;
    }
    if (c === "`" || (c === "}" && templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braces)) {
      // A template's text runs to its closing backtick or to the next ${, whose expression is code again.
      if (c === "}") templateDepth.pop();
      let j = i + 1;
      while (j < source.length && source[j] !== "`" && !(source[j] === "$" && source[j + 1] === "{")) {
        j += source[j] === "\\" ? 2 : 1;
      }
      if (source[j] === "$") {
        templateDepth.push(braces);
        out += source.slice(i, j + 2);
        i = j + 2;
      } else {
        out += source.slice(i, j + 1);
        i = j + 1;
      }
      last = "`";
      continue;
    }
    if (c === "/" && (last === "" || "(,=:[!&|?{};+-*%<>~^".includes(last) || /\b(return|typeof)$/.test(out))) {
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== "\n" && (inClass || source[j] !== "/")) {
        if (source[j] === "\\") j++;
        else if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        j++;
      }
      out += source.slice(i, j + 1);
      i = j + 1;
      last = "/";
      continue;
    }
    if (c === "{") braces++;
    if (c === "}") braces--;
    if (!/\s/.test(c)) last = c;
    out += c;
    i++;
  }
  return out;
}

const STATIC_IMPORT = /\bimport\s+(?:type\s+)?[\w$*{},\s]*?\bfrom\s*(["'])([^"'\n]+)\1/g;
const BARE_IMPORT = /\bimport\s*(["'])([^"'\n]+)\1/g;
const EXPORT_FROM = /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(["'])([^"'\n]+)\1/g;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(["'])([^"'\n]+)\1\s*\)/g;

/** The module specifiers a file names, with how it names each. */
export function specifiersOf(source: string): { specifier: string; kind: ImportKind }[] {
  const code = stripComments(source);
  const found: { specifier: string; kind: ImportKind }[] = [];
  for (const pattern of [STATIC_IMPORT, BARE_IMPORT, EXPORT_FROM]) {
    for (const match of code.matchAll(pattern)) found.push({ specifier: match[2] as string, kind: "static" });
  }
  for (const match of code.matchAll(DYNAMIC_IMPORT)) found.push({ specifier: match[2] as string, kind: "dynamic" });
  return found;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/** The file a relative specifier names, among the files given (x.ts, x/index.ts, x.js written for x.ts). */
export function resolveSpecifier(from: string, specifier: string, files: ReadonlySet<string>): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const base = normalize(`${from.slice(0, from.lastIndexOf("/") + 1)}${specifier}`);
  const stem = base.replace(/\.(js|mjs|ts|mts)$/, "");
  for (const candidate of [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${base}/index.ts`, `${base}/index.tsx`]) {
    if (files.has(candidate)) return candidate;
  }
  return undefined;
}

/** Every import between the files given (paths relative to one root, "/" separated). */
export function importEdges(sources: Readonly<Record<string, string>>): ImportEdge[] {
  const files = new Set(Object.keys(sources));
  const edges: ImportEdge[] = [];
  for (const [from, source] of Object.entries(sources)) {
    for (const { specifier, kind } of specifiersOf(source)) {
      const to = resolveSpecifier(from, specifier, files);
      if (to) edges.push({ from, to, kind });
    }
  }
  return edges;
}

/** The import cycles among the files given: one entry per strongly connected component. */
export function findImportCycles(sources: Readonly<Record<string, string>>): ImportCycle[] {
  const edges = importEdges(sources);
  const next = new Map<string, Map<string, ImportKind>>();
  for (const file of Object.keys(sources).sort()) next.set(file, new Map());
  for (const { from, to, kind } of edges) {
    const targets = next.get(from) as Map<string, ImportKind>;
    // A static import of the same file wins: the circle is there at load time.
    if (targets.get(to) !== "static") targets.set(to, kind);
  }

  // Tarjan's strongly connected components, iterative so a deep chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of next.keys()) {
    if (index.has(root)) continue;
    const work: { node: string; targets: Iterator<string> }[] = [];
    const visit = (node: string) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, targets: (next.get(node) as Map<string, ImportKind>).keys() });
    };
    visit(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string; targets: Iterator<string> };
      const step = frame.targets.next();
      if (!step.done) {
        const target = step.value;
        if (!index.has(target)) visit(target);
        else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(target) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = component.length === 1 && next.get(frame.node)?.has(frame.node);
        if (component.length > 1 || selfLoop) components.push(component.sort());
      }
    }
  }

  return components
    .map((files) => {
      const inside = new Set(files);
      const start = files[0] as string;
      // Breadth-first from the first file back to itself, inside the component: the shortest circle.
      const cameFrom = new Map<string, string>();
      const queue = [start];
      let closing: string | undefined;
      while (queue.length > 0 && closing === undefined) {
        const node = queue.shift() as string;
        for (const target of (next.get(node) as Map<string, ImportKind>).keys()) {
          if (target === start) {
            closing = node;
            break;
          }
          if (inside.has(target) && !cameFrom.has(target)) {
            cameFrom.set(target, node);
            queue.push(target);
          }
        }
      }
      const between: string[] = [];
      for (let node = closing as string; node !== start; node = cameFrom.get(node) as string) between.unshift(node);
      const circle = [start, ...between, start];
      const throughDynamicImport = circle
        .slice(0, -1)
        .some((node, k) => next.get(node)?.get(circle[k + 1] as string) === "dynamic");
      return { files, path: circle, throughDynamicImport };
    })
    .sort((a, b) => (a.files[0] as string).localeCompare(b.files[0] as string));
}

/** A cycle as a reader wants it in a failure message. */
export function describeCycle(cycle: ImportCycle): string {
  const note = cycle.throughDynamicImport ? " (through a dynamic import())" : "";
  return `${cycle.files.length} files in a cycle${note}, e.g. ${cycle.path.join(" → ")}\n  ${cycle.files.join("\n  ")}`;
}
