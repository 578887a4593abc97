import { JOIN, SPLIT } from "./unicode61";

/**
 * Turns what a user typed into an FTS5 query that can only mean "these words": nothing they type is
 * query syntax. A typed word is a run of letters, digits and marks; everything else separates them. The
 * index splits text exactly as SQLite's unicode61 tokenizer does (`TOKEN`), so a typed word may hold more
 * than one of its words ("हिंदी" holds "ह" and "द"), which must then occur in a row. Each typed word must
 * occur, its last part as the start of a word (a one-character part as a whole word); text in double
 * quotes must occur as that phrase. Every term is written as an FTS5 string, so `OR`, `NEAR`, `*`, `-`,
 * `'` and `"` are only ever text.
 */
const TYPED = /[\p{L}\p{N}\p{M}\p{Co}]+/gu;
/** A word of the index, as unicode61 (remove_diacritics 2) draws its boundaries (unicode61.ts). */
const TOKEN = new RegExp(`[[\\p{L}\\p{N}\\p{Co}${JOIN}]--[${SPLIT}]]+`, "gv");
/** A word must hold a letter or digit: one of only diacritics folds to nothing and would match nothing. */
const HAS_TEXT = new RegExp(`[[\\p{L}\\p{N}\\p{Co}]--[${SPLIT}]]`, "v");

/** At most this many words and phrases are looked for (the rest of `q` is left out): each is an index merge. */
export const MAX_TERMS = 8;

/** The index's words in `text`, with their [start, end) UTF-16 offsets. */
export function wordSpans(text: string): { word: string; start: number; end: number }[] {
  return [...text.matchAll(TOKEN)]
    .filter((match) => HAS_TEXT.test(match[0]))
    .map((match) => ({ word: match[0], start: match.index, end: match.index + match[0].length }));
}

const tokensOf = (text: string) => wordSpans(text).map((span) => span.word);

/** An FTS5 string: the words hold only letters, digits and marks (and the key), so no quote is ever inside. */
const quoted = (words: string[]) => `"${words.join(" ")}"`;

/**
 * `words`: each typed word as the index's words it holds (most often one); `phrases`: each quoted text
 * as the index's words it holds.
 */
export type SearchTerms = { phrases: string[][]; words: string[][] };

export function parseSearch(q: string): SearchTerms {
  const phrases: string[][] = [];
  const rest = q.replace(/"([^"]*)"/g, (_, inner: string) => {
    const words = tokensOf(inner);
    if (words.length) phrases.push(words);
    return " ";
  });
  const words = (rest.match(TYPED) ?? []).map(tokensOf).filter((tokens) => tokens.length > 0);
  const keptPhrases = phrases.slice(0, MAX_TERMS);
  return { phrases: keptPhrases, words: words.slice(0, Math.max(0, MAX_TERMS - keptPhrases.length)) };
}

/** Whether a typed word's last part matches as the start of a word: one character matches only itself. */
export const byPrefix = (tokens: string[]) => [...(tokens.at(-1) ?? "")].length > 1;

/**
 * Stands for the user's search key in a MATCH expression: the search statement puts the key in its place
 * (search.repo.ts), so the key never leaves the database.
 */
export const KEY = "\u0001";

/**
 * The MATCH expression for `terms` (each word after the user's key), within a chatroom's scope token if
 * given, or undefined when there is nothing to look for.
 */
export function matchExpression(terms: SearchTerms, chatroomScope?: string): string | undefined {
  if (!terms.phrases.length && !terms.words.length) return undefined;
  const keyed = (words: string[]) => words.map((word) => `${KEY}${word}`);
  return [
    ...(chatroomScope ? [`scope : "${chatroomScope}"`] : []),
    ...terms.phrases.map((phrase) => `terms : ${quoted(keyed(phrase))}`),
    // One-character words match whole words only: as a prefix, one letter would merge most of the user's terms.
    ...terms.words.map((tokens) => `terms : ${quoted(keyed(tokens))}${byPrefix(tokens) ? "*" : ""}`),
  ].join(" AND ");
}

/** The scope token of a chatroom id: its hex digits after "c". */
export const chatroomScope = (id: string) => `c${id.replace(/[^0-9a-zA-Z]/g, "")}`;

/**
 * A message's words as the index stores them, one space between each: the statement that stores them
 * puts the user's key in front of every word (search.terms.ts). Empty when the text holds no word.
 */
export const wordsOfText = (text: string) => tokensOf(text).join(" ");

/** A word as unicode61 with remove_diacritics 2 compares it: case and diacritics folded. */
export const foldWord = (word: string) => word.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
