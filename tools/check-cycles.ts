// npm run lint: fails, naming the files, when the files of src/ import each other in a circle.
// test/imports.test.ts asserts the same inside the test run.
import { readdirSync, readFileSync } from "node:fs";
import { describeCycle, findImportCycles } from "./import-cycles";

const sources: Record<string, string> = {};
for (const file of readdirSync("src", { recursive: true })) {
  const path = `src/${file.replaceAll("\\", "/")}`;
  if (/\.(ts|tsx|mts)$/.test(path)) sources[path] = readFileSync(path, "utf8");
}

const cycles = findImportCycles(sources);
if (cycles.length > 0) {
  console.error(`Import cycles in src/ (${cycles.length}):\n${cycles.map(describeCycle).join("\n")}`);
  process.exitCode = 1;
} else {
  console.log(`No import cycles among the ${Object.keys(sources).length} files of src/`);
}
