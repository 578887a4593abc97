import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SEARCH_SQL } from "../src/features/search/search.repo";
import { plainSnippet } from "../src/features/search/search.routes";
import {
  type CallResult,
  call,
  countingD1,
  createChatroom,
  expectError,
  makePro,
  runConsumer,
  sendPrompt,
  verifiedUser,
} from "./helpers";
import { expectLogged } from "./logs";
import { geminiError, geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

async function answer(promptId: string, reply: () => Response) {
  vi.restoreAllMocks();
  stubGemini(reply);
  await runConsumer([{ promptId }], { env: aiEnv() });
  vi.restoreAllMocks();
}

const search = (token: string, query: Record<string, string>) =>
  call("GET", `/api/search?${new URLSearchParams(query)}`, { token });

type Result = { messageId: string; snippet: string; highlights: [number, number][]; role: string; chatroomId: string };
const resultsOf = (res: CallResult) => res.body.results as Result[];
const snippetsOf = (res: CallResult) => resultsOf(res).map((result) => result.snippet);

/** A Pro user with two chatrooms: one about Lisbon (answered), one about Porto. */
async function library() {
  const user = await verifiedUser();
  await makePro(user.user.id);
  const lisbon = await createChatroom(user.token, "Lisbon");
  const porto = await createChatroom(user.token, "Porto");
  const q1 = await sendPrompt(user.token, lisbon.id, "Plan three days in Lisbôa with trams");
  await answer(q1, () => geminiText("Day one: ride tram 28 through Alfama."));
  const q2 = await sendPrompt(user.token, porto.id, "Where to eat francesinha in Porto?");
  await answer(q2, () => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
  expectLogged("warn", "Gemini call failed", { promptId: q2, retryable: false });
  return { token: user.token, lisbon, porto, q1, q2 };
}

describe("GET /api/search", () => {
  it("finds the user's prompts and replies by word prefix, ignoring case and diacritics, never a failure note", async () => {
    const { token, lisbon, q1, q2 } = await library();
    const found = await search(token, { q: "LISBOA" });
    expect(found.status).toBe(200);
    expect(resultsOf(found)).toEqual([
      expect.objectContaining({ messageId: q1, chatroomId: lisbon.id, chatroomName: "Lisbon", role: "user" }),
    ]);
    expect(snippetsOf(await search(token, { q: "alfa" }))).toEqual(["Day one: ride tram 28 through Alfama."]);
    // The prompt that failed is found; the note answering it is not.
    expect(resultsOf(await search(token, { q: "francesinha" })).map((r) => r.messageId)).toEqual([q2]);
    expect(resultsOf(await search(token, { q: "invalid" }))).toEqual([]);
    expect(resultsOf(await search(token, { q: "problem" }))).toEqual([]);
  });

  it("needs every word, keeps quoted words together, and can stay in one chatroom", async () => {
    const { token, lisbon, porto } = await library();
    expect(resultsOf(await search(token, { q: "tram lisbo" }))).toHaveLength(1);
    expect(resultsOf(await search(token, { q: "tram porto" }))).toHaveLength(0);
    expect(resultsOf(await search(token, { q: '"ride tram"' }))).toHaveLength(1);
    expect(resultsOf(await search(token, { q: '"tram ride"' }))).toHaveLength(0);
    expect(resultsOf(await search(token, { q: "tram", chatroomId: porto.id }))).toHaveLength(0);
    expect(resultsOf(await search(token, { q: "tram", chatroomId: lisbon.id }))).toHaveLength(2);
  });

  it("never shows another user's messages", async () => {
    await library();
    const stranger = await verifiedUser();
    const room = await createChatroom(stranger.token);
    await sendPrompt(stranger.token, room.id, "my own tram question");
    const res = await search(stranger.token, { q: "tram" });
    expect(snippetsOf(res)).toEqual(["my own tram question"]);
  });

  it.each([
    '"',
    "*",
    "NEAR(",
    "tram OR porto",
    "-tram",
    "'); DROP TABLE messages; --",
    "tram*",
    "content : tram",
    "^tram",
    '""',
    "(",
  ])("treats %j as text: 200, never query syntax", async (q) => {
    const { token } = await library();
    const res = await search(token, { q });
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body.results)).toBe(true);
  });

  it("ranks the better match first, ties newest first, and pages with a stable cursor", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const once = await sendPrompt(
      token,
      room.id,
      "a long sentence that mentions azulejo only once among many other words",
    );
    const twice = await sendPrompt(token, room.id, "azulejo azulejo");
    const older = await sendPrompt(token, room.id, "azulejo tiles");
    const newer = await sendPrompt(token, room.id, "azulejo tiles");
    const all = resultsOf(await search(token, { q: "azulejo" })).map((r) => r.messageId);
    expect(all[0]).toBe(twice);
    expect(all.indexOf(newer)).toBeLessThan(all.indexOf(older));
    expect(all.at(-1)).toBe(once);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res: CallResult = await search(token, { q: "azulejo", limit: "1", ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      paged.push(...resultsOf(res).map((r) => r.messageId));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
  });

  it("finds every branch, and forgets a deleted chatroom at once", async () => {
    const { token, lisbon, q1 } = await library();
    const edited = await call("POST", `/api/chatroom/${lisbon.id}/message/${q1}/edit`, {
      token,
      body: { userMessage: "Plan two days in Lisbon by bike" },
    });
    expect(edited.status).toBe(202);
    // The first version is on another branch now, and still found.
    expect(
      resultsOf(await search(token, { q: "lisbo" }))
        .map((r) => r.messageId)
        .sort(),
    ).toEqual([q1, edited.body.prompt.id].sort());
    expect((await call("DELETE", `/api/chatroom/${lisbon.id}`, { token })).status).toBe(200);
    expect(resultsOf(await search(token, { q: "lisbo" }))).toEqual([]);
    const left = await env.DB.prepare(
      "SELECT count(*) AS n FROM search_docs d LEFT JOIN messages m ON m.id = d.message_id WHERE m.id IS NULL",
    ).first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("gives plain-text snippets with the offsets of each matched word", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const long = `${"filler words go here ".repeat(20)}the <b>Lisbon</b> & Sintra trip ${"and more words after ".repeat(20)}`;
    await sendPrompt(token, room.id, long);
    const [result] = resultsOf(await search(token, { q: "lisbon sintra" }));
    expect(result).toBeDefined();
    const { snippet, highlights } = result as Result;
    expect(snippet.length).toBeLessThanOrEqual(200);
    expect(snippet).toContain("<b>Lisbon</b> & Sintra");
    expect(highlights.map(([start, end]) => snippet.slice(start, end))).toEqual(["Lisbon", "Sintra"]);
    expect(snippet.startsWith("…") && snippet.endsWith("…")).toBe(true);
  });

  it("matches a one-letter word whole, ignores words that hold no letter or digit, and looks for 8 terms at most", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    await sendPrompt(token, room.id, "a tram to Belém");
    await sendPrompt(token, room.id, "avenida tour");
    expect(snippetsOf(await search(token, { q: "a" }))).toEqual(["a tram to Belém"]);
    expect(snippetsOf(await search(token, { q: "tram \u0301" }))).toEqual(["a tram to Belém"]);
    // Words past the eighth are left out: x and y occur nowhere, and do not stop the match.
    const many = await search(token, { q: "a tram to belem tram to a tram x y" });
    expect(many.status).toBe(200);
    expect(snippetsOf(many)).toEqual(["a tram to Belém"]);
  });

  it("gives a cursor that reveals nothing of the ranking", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    for (let i = 0; i < 3; i++) await sendPrompt(token, room.id, `azulejo ${i}`);
    const res = await search(token, { q: "azulejo", limit: "2" });
    expect(JSON.parse(atob(res.body.nextCursor))).toEqual({ o: 2 });
  });

  it("answers in one D1 round trip", async () => {
    const { token } = await library();
    const { binding, counter } = countingD1(env.DB);
    const res = await call("GET", "/api/search?q=tram", { token, env: { ...env, DB: binding } });
    expect(res.status).toBe(200);
    expect(counter.roundTrips).toBe(1);
  });

  it.each([
    ["no q", ""],
    ["an empty q", "q="],
    ["a blank q", "q=%20%20"],
    ["a q over 200 characters", `q=${"a".repeat(201)}`],
    ["a control character", "q=tram%07"],
    ["limit 0", "q=tram&limit=0"],
    ["limit 51", "q=tram&limit=51"],
    ["a forged cursor", "q=tram&cursor=bm90LWEtY3Vyc29y"],
    ["a malformed chatroomId", "q=tram&chatroomId=nope"],
    ["an unknown parameter", "q=tram&sort=new"],
  ])("answers 400 VALIDATION_FAILED for %s", async (_label, query) => {
    const { token } = await verifiedUser();
    expectError(await call("GET", `/api/search?${query}`, { token }), 400, "VALIDATION_FAILED");
  });

  it("needs a token", async () => {
    expectError(await call("GET", "/api/search?q=tram"), 401, "UNAUTHORIZED");
  });
});

describe("plainSnippet", () => {
  it("keeps a surrogate pair whole when it cuts", () => {
    const marked = `${"😀".repeat(150)}\u0001hit\u0002${"😀".repeat(150)}`;
    const { snippet, highlights } = plainSnippet(marked);
    expect(snippet.length).toBeLessThanOrEqual(200);
    expect(snippet).not.toMatch(/^…?[\udc00-\udfff]|[\ud800-\udbff]…?$/);
    expect(highlights.map(([start, end]) => snippet.slice(start, end))).toEqual(["hit"]);
  });
});

describe("the search statement's plan", () => {
  it("reads FTS5 first, then each match's rows by key, never a scan of messages", async () => {
    const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${SEARCH_SQL}`)
      .bind('scope : "u00" AND content : "harbour"*', "user", 20, 0)
      .all<{ detail: string }>();
    const steps = results.map((row) => row.detail);
    expect(steps[0]).toMatch(/^SCAN f VIRTUAL TABLE/);
    expect(steps.slice(1, 4)).toEqual([
      expect.stringMatching(/^SEARCH d USING INTEGER PRIMARY KEY/),
      expect.stringMatching(/^SEARCH m USING INDEX \S+ \(id=\?\)/),
      expect.stringMatching(/^SEARCH c USING INDEX \S+ \(id=\?\)/),
    ]);
  });
});
