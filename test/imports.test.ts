/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { describeCycle, findImportCycles, specifiersOf } from "../tools/import-cycles";

// The test runs in workerd, which has no file system: Vite reads src/ while it transforms this file.
const sources = Object.fromEntries(
  Object.entries(import.meta.glob<string>("../src/**/*.ts", { query: "?raw", import: "default", eager: true })).map(
    ([path, source]) => [path.replace(/^\.\.\//, ""), source],
  ),
);

describe("imports", () => {
  it("form no cycle among the files of src/", () => {
    expect(Object.keys(sources)).toContain("src/features/messages/index.ts");
    expect(findImportCycles(sources).map(describeCycle)).toEqual([]);
  });

  it("find a circle that runs through two features' index.ts, type-only imports included", () => {
    const cycles = findImportCycles({
      "src/features/a/index.ts": 'export { one } from "./one";',
      "src/features/a/one.ts": 'import type { Two } from "../b";\nexport const one = 1;',
      "src/features/b/index.ts": "export * from './two';",
      "src/features/b/two.ts": 'import { one } from "../a";\nexport type Two = typeof one;',
      "src/features/c/index.ts": 'import { one } from "../a/one.js";',
    });
    expect(cycles).toEqual([
      {
        files: ["src/features/a/index.ts", "src/features/a/one.ts", "src/features/b/index.ts", "src/features/b/two.ts"],
        path: [
          "src/features/a/index.ts",
          "src/features/a/one.ts",
          "src/features/b/index.ts",
          "src/features/b/two.ts",
          "src/features/a/index.ts",
        ],
        throughDynamicImport: false,
      },
    ]);
  });

  it("count a dynamic import() only when it closes a circle", () => {
    const lazy = {
      "src/index.ts": 'const app = () => import("./app");',
      "src/app.ts": 'import type { Env } from "./types";\nconst part = async () => (await import("./part")).x;',
      "src/part.ts": 'import type { Env } from "./types";\nexport const x = 1;',
      "src/types.ts": "export type Env = {};",
    };
    expect(findImportCycles(lazy)).toEqual([]);
    const circle = findImportCycles({ ...lazy, "src/part.ts": 'import { createApp } from "./app";' });
    expect(circle.map((cycle) => [cycle.path, cycle.throughDynamicImport])).toEqual([
      [["src/app.ts", "src/part.ts", "src/app.ts"], true],
    ]);
  });

  it("read specifiers from code, never from comments, nor lose code after a // inside a string or a regular expression", () => {
    const source = [
      "// import { a } from './commented';",
      "/* export * from './blocked'; */",
      'const text = "not // a comment"; import {',
      "  b,",
      "  type C,",
      '} from "./multiline";',
      "const re = /\\/\\//; import { f } from './after-regex';",
      // A template with a placeholder (escaped here, so that this file's own template keeps it as text).
      `const t = \`$\{'x'} // kept\`; export { d } from './reexport';`,
      "import './side-effect';",
      "export type { E } from './types';",
    ].join("\n");
    expect(specifiersOf(source)).toEqual([
      { specifier: "./multiline", kind: "static" },
      { specifier: "./after-regex", kind: "static" },
      { specifier: "./side-effect", kind: "static" },
      { specifier: "./reexport", kind: "static" },
      { specifier: "./types", kind: "static" },
    ]);
  });
});
