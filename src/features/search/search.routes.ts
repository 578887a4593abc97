import { createRoute, z } from "@hono/zod-openapi";
import { AppError } from "../../lib/errors";
import { isId } from "../../lib/ids";
import {
  authErrors,
  bearerAuth,
  built,
  docsOnly,
  errorResponses,
  jsonResponse,
  successSchema,
} from "../../lib/openapi";
import { queryInteger } from "../../lib/query";
import { textField } from "../../lib/text";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import {
  byPrefix,
  chatroomScope,
  foldWord,
  matchExpression,
  parseSearch,
  type SearchTerms,
  wordSpans,
} from "./search.query";
import { type SearchRow, searchMessages } from "./search.repo";

/** A snippet is at most this many characters, around the first match. */
export const SNIPPET_MAX = 200;

const SearchQuerySchema = z.object({
  q: textField({ field: "q", min: 1, max: 200, trim: true }).openapi({
    param: { name: "q", in: "query" },
    description:
      'Every word must occur (as a word\'s start: "lisb" finds "Lisbon"; a one-character word as a whole word); "quoted words" must occur together; case and diacritics are ignored; any other character is text, never query syntax. The first 8 words and phrases are looked for',
    example: "lisbon",
  }),
  limit: queryInteger("limit", 1, 50)
    .default(20)
    .openapi({ param: { name: "limit", in: "query" }, description: "1–50" }),
  cursor: z
    .string()
    .max(200)
    .optional()
    .openapi({ param: { name: "cursor", in: "query" }, description: "nextCursor from the previous page" }),
  chatroomId: z
    .string()
    .refine(isId, "chatroomId must be a chatroom id")
    .optional()
    .openapi({ param: { name: "chatroomId", in: "query" }, description: "Only this chatroom's messages" }),
});

const SearchResultSchema = docsOnly(() =>
  z
    .object({
      chatroomId: z.string(),
      chatroomName: z.string().nullable().openapi({ description: "null while the chatroom waits for its title" }),
      messageId: z.string(),
      role: z.enum(["user", "assistant"]),
      snippet: z.string().openapi({
        description: `Plain text, at most ${SNIPPET_MAX} characters around the first match; … where cut`,
      }),
      highlights: z.array(z.tuple([z.number().int(), z.number().int()])).openapi({
        description: "[start, end) UTF-16 offsets into snippet of each matched word",
      }),
      createdAt: z.string(),
    })
    .openapi("SearchResult", {
      example: {
        chatroomId: "0193a1c2-7d6e-7f00-8a1b-2c3d4e5f6a7b",
        chatroomName: "Trip planning",
        messageId: "0198a9e4-0b6f-7a10-9c21-3d4e5f6a7b8c",
        role: "user",
        snippet: "Plan 3 days in Lisbon with a day trip to Sintra",
        highlights: [[15, 21]],
        createdAt: "2026-08-15T09:30:00.000Z",
      },
    }),
);

const SearchResponseSchema = docsOnly(() =>
  successSchema({
    results: z.array(built(SearchResultSchema)),
    nextCursor: z.string().nullable().openapi({
      description:
        "Pass as cursor for the next results; null at the end (or after 10,000 results). Pages are counted, so one read after new messages were written may repeat or skip a result",
      example: "eyJvIjoyMH0",
    }),
  }),
);

/** Mounted at /api/search (src/app.ts). */
export const searchRoutes = createRouter<AppEnv>();

searchRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "search",
    tags: ["Your data"],
    summary: "Search everything you wrote and every reply you got",
    description:
      "Your prompts and replies in every chatroom and on every branch (failure notes left out), ranked by relevance (bm25), ties newest first. " +
      "One D1 round trip through SQLite FTS5, whose index keeps each user's words under a key of their own, so a search reads only your postings and costs the same however much others write. " +
      "A message is found from the moment it is stored (a reply once it settles); a deleted chatroom's messages never.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    request: { query: SearchQuerySchema },
    responses: {
      200: jsonResponse(SearchResponseSchema, "The matching messages, best first"),
      ...errorResponses({
        ...authErrors,
        400: "VALIDATION_FAILED: q missing, over 200 characters or holding a control character; limit out of 1–50; a malformed cursor or chatroomId",
      }),
    },
  }),
  async (c) => {
    const { q, limit, cursor, chatroomId } = c.req.valid("query");
    const offset = cursor === undefined ? 0 : parseCursor(cursor);
    const terms = parseSearch(q);
    const match = matchExpression(terms, chatroomId && chatroomScope(chatroomId));
    const rows = match
      ? await searchMessages(c.get("db"), { match, userId: c.get("userId"), limit: limit + 1, offset })
      : [];
    const page = rows.slice(0, limit);
    const nextCursor = rows.length > limit && offset + limit < 10_000 ? formatCursor(offset + limit) : null;
    const results = page.map((row) => toResult(row, terms));
    return c.json({ success: true as const, message: "Search results", results, nextCursor }, 200);
  },
);

function toResult(row: SearchRow, terms: SearchTerms) {
  const { snippet, highlights } = snippetOf(row.content, terms);
  return {
    chatroomId: row.chatroom_id,
    chatroomName: row.chatroom_name === "" ? null : row.chatroom_name,
    messageId: row.id,
    role: row.role,
    snippet,
    highlights,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/**
 * The words of `text` that the search terms match (a typed word's last part by its start, a
 * one-character part whole; a phrase's words in a row; case and diacritics folded as the index folds
 * them) as [start, end) offsets, and the text cut to 200 characters around the first of them (… where
 * cut). A mark after a matched word is marked with it, so a word the index splits at its vowel signs is
 * marked whole. The index keeps no text, so this is worked out here from the stored message.
 */
export function snippetOf(text: string, terms: SearchTerms): { snippet: string; highlights: [number, number][] } {
  const spans = wordSpans(text);
  const folded = spans.map((span) => foldWord(span.word));
  const hit = spans.map(() => false);
  const mark = (tokens: string[], prefix: boolean) => {
    const wanted = tokens.map(foldWord);
    const last = wanted.length - 1;
    for (let i = 0; i + wanted.length <= folded.length; i++) {
      const matches = wanted.every((word, j) =>
        j === last && prefix ? folded[i + j]?.startsWith(word) : folded[i + j] === word,
      );
      if (matches) hit.fill(true, i, i + wanted.length);
    }
  };
  for (const tokens of terms.words) mark(tokens, byPrefix(tokens));
  for (const phrase of terms.phrases) mark(phrase, false);
  const highlights: [number, number][] = [];
  spans.forEach((span, i) => {
    if (!hit[i]) return;
    MARKS.lastIndex = span.end;
    const end = span.end + (MARKS.exec(text)?.[0].length ?? 0);
    const previous = highlights.at(-1);
    if (previous && previous[1] === span.start) previous[1] = end;
    else highlights.push([span.start, end]);
  });
  return cutSnippet(text, highlights);
}

/** The combining marks at a position. */
const MARKS = /\p{M}+/uy;

/** `text` cut to 200 characters around its first highlight, the highlights moved with it. */
function cutSnippet(text: string, highlights: [number, number][]): { snippet: string; highlights: [number, number][] } {
  if (text.length <= SNIPPET_MAX) return { snippet: text, highlights };
  // Keep the first match in view: start a little before it, end at the limit (offsets in UTF-16 units,
  // never splitting a surrogate pair).
  const first = highlights[0]?.[0] ?? 0;
  let from = Math.max(0, Math.min(first - 40, text.length - (SNIPPET_MAX - 2)));
  if (/[\udc00-\udfff]/.test(text.charAt(from))) from++;
  const lead = from > 0 ? "…" : "";
  let to = from + SNIPPET_MAX - lead.length - 1;
  if (to >= text.length) to = text.length;
  else if (/[\udc00-\udfff]/.test(text.charAt(to))) to--;
  const tail = to < text.length ? "…" : "";
  const snippet = `${lead}${text.slice(from, to)}${tail}`;
  const shift = lead.length - from;
  return {
    snippet,
    highlights: highlights
      .map(([s, e]): [number, number] => [s + shift, Math.min(e, to) + shift])
      .filter(([s, e]) => s >= lead.length && e > s),
  };
}

/**
 * The cursor: how many results the pages before returned. It reveals nothing (bm25 scores depend on
 * every user's messages), and a page after messages were written may repeat or skip a result.
 */
const formatCursor = (offset: number) => btoa(JSON.stringify({ o: offset })).replace(/=+$/, "");

function parseCursor(cursor: string): number {
  try {
    const { o } = JSON.parse(atob(cursor)) as { o?: unknown };
    if (typeof o === "number" && Number.isSafeInteger(o) && o > 0 && o <= 10_000) return o;
  } catch {
    // Not ours: answered below.
  }
  throw new AppError(400, "VALIDATION_FAILED", "Request validation failed", [
    { path: "cursor", message: "cursor must be a nextCursor value" },
  ]);
}
