import { afterAll, afterEach, expect } from "vitest";

/** One structured line the Worker logged: src/ writes each as one JSON object with a level. */
export type LogEntry = { level: string; message?: string; [field: string]: unknown };

type Captured = { entry: LogEntry; line: string; stderr: boolean; expected: boolean };

const captured: Captured[] = [];

function entryOf(args: unknown[]): LogEntry | undefined {
  const [line] = args;
  if (args.length !== 1 || typeof line !== "string" || !line.startsWith("{")) return undefined;
  try {
    const entry: unknown = JSON.parse(line);
    if (entry && typeof entry === "object" && typeof (entry as LogEntry).level === "string") return entry as LogEntry;
  } catch {}
  return undefined;
}

const listed = (lines: Captured[]) => lines.map(({ line }) => `  ${line}`).join("\n");

/**
 * Keeps the Worker's JSON log lines out of the test output (test/setup.ts). Each is kept for the test
 * that is running; a line written with console.error or console.warn is a failure the Worker noticed,
 * and fails that test unless the test expects it (`expectLogged`). Lines written with console.log (the
 * per-request and per-queue-message lines, summaries) may be asserted and need not be. Anything else
 * written to the console is printed as usual.
 *
 * The methods are replaced rather than spied on, so a test's vi.restoreAllMocks() leaves them in place
 * (and a test's own spy sees the lines first).
 */
export function captureLogs() {
  for (const method of ["log", "info", "warn", "error"] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      const entry = entryOf(args);
      if (!entry) return original(...args);
      captured.push({
        entry,
        line: args[0] as string,
        stderr: method === "warn" || method === "error",
        expected: false,
      });
    };
  }
  afterEach(() => {
    const unexpected = captured.filter(({ stderr, expected }) => stderr && !expected);
    captured.length = 0;
    if (unexpected.length > 0) {
      throw new Error(
        `The Worker logged ${unexpected.length} error or warning line(s) this test does not expect (expectLogged in ` +
          `test/logs.ts), or an earlier test's background work logged them after it ended:\n${listed(unexpected)}`,
      );
    }
  });
  afterAll(() => {
    const unexpected = captured.filter(({ stderr, expected }) => stderr && !expected);
    captured.length = 0;
    if (unexpected.length > 0) {
      throw new Error(`The Worker logged error or warning lines after the last test:\n${listed(unexpected)}`);
    }
  });
}

/**
 * Asserts that the running test has logged at least one line at `level` whose message is `message`
 * (or matches it), with `fields` (compared as `expect.objectContaining` does), and takes every such
 * line as expected. Returns their entries, oldest first, for closer assertions.
 */
export function expectLogged(
  level: "error" | "warn" | "info",
  message: string | RegExp,
  fields: Record<string, unknown> = {},
): LogEntry[] {
  const fieldsMatch = expect.objectContaining(fields);
  const matches = captured.filter(
    ({ entry }) =>
      entry.level === level &&
      (typeof message === "string" ? entry.message === message : message.test(String(entry.message ?? ""))) &&
      fieldsMatch.asymmetricMatch(entry),
  );
  expect(
    matches.length,
    `no ${level} line ${String(message)} with ${JSON.stringify(fields)}; logged so far:\n${listed(captured)}`,
  ).toBeGreaterThan(0);
  for (const match of matches) match.expected = true;
  return matches.map(({ entry }) => entry);
}
