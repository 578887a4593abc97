import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { chatroomScope, matchExpression, parseSearch } from "../src/features/search/search.query";
import { SEARCH_SQL } from "../src/features/search/search.repo";
import { snippetOf } from "../src/features/search/search.routes";
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
import { applyMigrations } from "./migrations";
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

  it("never shows another user's messages, even under the same search key", async () => {
    const { token } = await library();
    const stranger = await verifiedUser();
    const room = await createChatroom(stranger.token);
    await sendPrompt(stranger.token, room.id, "my own tram question");
    const res = await search(stranger.token, { q: "tram" });
    expect(snippetsOf(res)).toEqual(["my own tram question"]);
    // Were two keys ever to collide, the statement's owner check still keeps each to their own.
    const twin = await verifiedUser();
    const owner = (await call("GET", "/api/user/me", { token })).body.user.id as string;
    await env.DB.prepare("UPDATE users SET search_key = (SELECT search_key FROM users WHERE id = ?1) WHERE id = ?2")
      .bind(owner, twin.user.id)
      .run();
    await sendPrompt(twin.token, (await createChatroom(twin.token)).id, "a twin's tram question");
    expect(snippetsOf(await search(twin.token, { q: "tram" }))).toEqual(["a twin's tram question"]);
    expect(resultsOf(await search(twin.token, { q: "alfama" }))).toEqual([]);
    expect(resultsOf(await search(token, { q: "tram" }))).toHaveLength(2);
  });

  it("keeps every word under the user's own key, so a search reads only the user's postings", async () => {
    const mine = await verifiedUser();
    const theirs = await verifiedUser();
    const myRoom = await createChatroom(mine.token);
    const theirRoom = await createChatroom(theirs.token);
    await sendPrompt(mine.token, myRoom.id, "Azulejo tiles, «azulejos» and façades—azul_e·jo! 1st");
    await sendPrompt(mine.token, myRoom.id, "one more azulejo");
    // Scripts whose vowel signs and points unicode61 splits words at: every part still carries the key.
    await sendPrompt(mine.token, myRoom.id, "मुझे हिंदी पसंद है · مَرْحَبًا · שָׁלוֹם · ภาษาไทย");
    for (let i = 0; i < 5; i++) await sendPrompt(theirs.token, theirRoom.id, `their azulejo ${i}`);
    const keyOf = async (userId: string) =>
      (await env.DB.prepare("SELECT search_key FROM users WHERE id = ?").bind(userId).first<{ search_key: string }>())
        ?.search_key;
    const myKey = await keyOf(mine.user.id);
    expect(myKey).toMatch(/^[0-9a-f]{12}$/);
    expect(await keyOf(theirs.user.id)).not.toBe(myKey);
    // The rows the search statement's MATCH reads for each user: their own, whoever else wrote the word.
    const rowsRead = async (userId: string, q: string) =>
      (
        await env.DB.prepare(
          "SELECT count(*) AS n FROM message_terms WHERE message_terms MATCH (SELECT replace(?1, char(1), search_key) FROM users WHERE id = ?2)",
        )
          .bind(matchExpression(parseSearch(q)), userId)
          .first<{ n: number }>()
      )?.n;
    expect(await rowsRead(mine.user.id, "azulejo")).toBe(2);
    expect(await rowsRead(mine.user.id, "azu")).toBe(2);
    expect(await rowsRead(theirs.user.id, "azulejo")).toBe(5);
    // No word is stored bare: every term of the words column starts with a user's key.
    await env.DB.prepare("CREATE VIRTUAL TABLE terms_vocab USING fts5vocab(message_terms, 'col')").run();
    const { results: terms } = await env.DB.prepare("SELECT term FROM terms_vocab WHERE col = 'terms'").all<{
      term: string;
    }>();
    expect(terms.map((row) => row.term)).toContain(`${myKey}facades`);
    const { results: bare } = await env.DB.prepare(
      "SELECT term FROM terms_vocab WHERE col = 'terms' AND substr(term, 1, 12) NOT IN (SELECT search_key FROM users)",
    ).all();
    expect(bare).toEqual([]);
    for (const q of ["हिंदी", "पसंद", "مَرْحَبًا", "שָׁלוֹם", "ภาษา"]) {
      const found = await search(mine.token, { q });
      expect(resultsOf(found), q).toHaveLength(1);
      expect(await rowsRead(theirs.user.id, q), q).toBe(0);
    }
    const [hindi] = resultsOf(await search(mine.token, { q: "हिंदी" }));
    expect(hindi?.highlights.map(([start, end]) => hindi.snippet.slice(start, end))).toEqual(["हिंदी"]);
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

  it("answers 200 with nothing found for a user whose search key is missing", async () => {
    const { token, user } = await verifiedUser();
    await sendPrompt(token, (await createChatroom(token)).id, "a tram question");
    await env.DB.prepare("UPDATE users SET search_key = NULL WHERE id = ?").bind(user.id).run();
    const res = await search(token, { q: "tram" });
    expect(res.status).toBe(200);
    expect(resultsOf(res)).toEqual([]);
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

describe("snippetOf", () => {
  it("keeps a surrogate pair whole when it cuts", () => {
    const text = `${"😀".repeat(150)} hit ${"😀".repeat(150)}`;
    const { snippet, highlights } = snippetOf(text, parseSearch("hit"));
    expect(snippet.length).toBeLessThanOrEqual(200);
    expect(snippet).not.toMatch(/^…?[\udc00-\udfff]|[\ud800-\udbff]…?$/);
    expect(highlights.map(([start, end]) => snippet.slice(start, end))).toEqual(["hit"]);
  });

  it("marks what the index matched: word starts folded, one letter whole, phrases in a row", () => {
    const marked = (text: string, q: string) => {
      const { snippet, highlights } = snippetOf(text, parseSearch(q));
      return highlights.map(([start, end]) => snippet.slice(start, end));
    };
    expect(marked("Lisbôa, LISBON and lisbonne; Porto", "lisbo")).toEqual(["Lisbôa", "LISBON", "lisbonne"]);
    expect(marked("a tram, an avenue", "a")).toEqual(["a"]);
    expect(marked("ride the tram, then tram ride", '"tram ride"')).toEqual(["tram", "ride"]);
    expect(marked("nothing here", "tram")).toEqual([]);
    // A word unicode61 splits at its vowel signs is matched part by part, in a row, and marked whole.
    expect(parseSearch("हिंदी").words).toEqual([["ह", "द"]]);
    expect(marked("मुझे हिंदी पसंद है", "हिंदी")).toEqual(["हिंदी"]);
    // "हिं" is the one-letter word "ह", as the index sees it: matched whole, wherever it stands.
    expect(marked("मुझे हिंदी पसंद है", "हिं")).toEqual(["हिं", "है"]);
  });
});

describe("the search statement's plan", () => {
  it("reads FTS5 first, then each match's rows by key, never a scan of messages", async () => {
    const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${SEARCH_SQL}`)
      .bind(matchExpression(parseSearch("harbour")), "user", 20, 0)
      .all<{ detail: string }>();
    const steps = results.map((row) => row.detail);
    expect(steps[0]).toMatch(/^SCAN f VIRTUAL TABLE/);
    // The user's key, once for the statement, by the users table's key.
    expect(steps.slice(1, 3)).toEqual([
      "SCALAR SUBQUERY 1",
      expect.stringMatching(/^SEARCH users USING INDEX \S+ \(id=\?\)/),
    ]);
    expect(steps.slice(3, 6)).toEqual([
      expect.stringMatching(/^SEARCH d USING INTEGER PRIMARY KEY/),
      expect.stringMatching(/^SEARCH m USING INDEX \S+ \(id=\?\)/),
      expect.stringMatching(/^SEARCH c USING INDEX \S+ \(id=\?\)/),
    ]);
  });
});

describe("migration 0014 (each user's words under their own key)", () => {
  it("moves every indexed message to the new index, words in order, each user's under their own key", async () => {
    const db = env.MIGRATION_DB;
    await applyMigrations(
      db,
      env.TEST_MIGRATIONS.filter((migration) => migration.name < "0014"),
    );
    const at = Date.parse("2026-11-01T00:00:00Z");
    const rows: [string, string, string, "user" | "assistant", string, string, string | null][] = [
      // [id, user, chatroom, role, status, content, replyTo]
      ["m1", "u1", "r1", "user", "completed", "Plan three days in Lisbôa, with trams!", null],
      ["m2", "u1", "r1", "assistant", "completed", "Ride tram 28 through Alfama.", "m1"],
      ["m3", "u1", "r1", "user", "failed", "Where is Porto?", null],
      ["m4", "u1", "r1", "assistant", "failed", "A problem on our side", "m3"],
      ["m5", "u2", "r2", "user", "completed", "Lisbon trams for me too", null],
      ["m6", "u1", "r1", "user", "completed", "मुझे हिंदी पसंद है", null],
    ];
    await db.batch([
      ...["u1", "u2"].map((user, i) =>
        db
          .prepare(
            "INSERT INTO users (id, phone_number, password_hash, created_at, updated_at) VALUES (?1, ?2, 'x', ?3, ?3)",
          )
          .bind(user, `+91000000000${i}`, at),
      ),
      ...[
        ["r1", "u1"],
        ["r2", "u2"],
      ].map(([room, user]) =>
        db
          .prepare(
            "INSERT INTO chatrooms (id, user_id, name, name_key, created_at, updated_at) VALUES (?1, ?2, ?1, ?1, ?3, ?3)",
          )
          .bind(room, user, at),
      ),
      ...rows.map(([id, user, room, role, status, content, replyTo], i) =>
        db
          .prepare(
            "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, reply_to, parent_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?8)",
          )
          .bind(id, room, user, role, content, status, replyTo, at + i),
      ),
    ]);
    await applyMigrations(db, env.TEST_MIGRATIONS);

    const search = async (userId: string, q: string, chatroomId?: string) =>
      (
        await db
          .prepare(SEARCH_SQL)
          .bind(matchExpression(parseSearch(q), chatroomId && chatroomScope(chatroomId)), userId, 50, 0)
          .all<{ id: string }>()
      ).results.map((row) => row.id);
    expect(await search("u1", "lisboa")).toEqual(["m1"]);
    expect((await search("u1", "tram")).sort()).toEqual(["m1", "m2"]);
    expect(await search("u1", '"ride tram"')).toEqual(["m2"]);
    expect(await search("u1", '"tram ride"')).toEqual([]);
    expect(await search("u1", "porto")).toEqual(["m3"]);
    expect(await search("u1", "problem")).toEqual([]);
    expect(await search("u1", "tram", "r2")).toEqual([]);
    expect(await search("u2", "lisbo")).toEqual(["m5"]);
    expect(await search("u2", "alfama")).toEqual([]);
    // The old index's words of a script unicode61 splits at its vowel signs match what a search sends.
    expect(await search("u1", "हिंदी")).toEqual(["m6"]);
    expect(await search("u1", '"हिंदी पसंद"')).toEqual(["m6"]);
    const keys = (await db.prepare("SELECT search_key FROM users").all<{ search_key: string }>()).results;
    expect(keys.map((row) => row.search_key)).toEqual([expect.stringMatching(/^[0-9a-f]{12}$/), expect.any(String)]);
    expect(new Set(keys.map((row) => row.search_key)).size).toBe(2);
    const old = await db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name LIKE 'messages_fts%'").first();
    expect(old?.n).toBe(0);
  });
});
