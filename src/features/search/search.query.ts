/**
 * Turns what a user typed into an FTS5 query that can only mean "these words": nothing they type is
 * query syntax. Words are the runs of letters, digits and marks (what the unicode61 tokenizer keeps);
 * everything else separates them. Each word must occur, as a prefix of a word (a one-character word as a
 * whole word); text in double quotes
 * must occur as that phrase. Every term is written as an FTS5 string, so `OR`, `NEAR`, `*`, `-`, `'` and
 * `"` are only ever text.
 */
const WORD = /[\p{L}\p{N}\p{M}\p{Co}]+/gu;
/** A word must hold a letter or digit: a lone combining mark folds to nothing and would match nothing. */
const HAS_TEXT = /[\p{L}\p{N}]/u;

/** At most this many words and phrases are looked for (the rest of `q` is left out): each is an index merge. */
export const MAX_TERMS = 8;

const wordsOf = (text: string) => (text.match(WORD) ?? []).filter((word) => HAS_TEXT.test(word));
/** An FTS5 string: the words hold only letters, digits and marks (and the key), so no quote is ever inside. */
const quoted = (words: string[]) => `"${words.join(" ")}"`;

export type SearchTerms = { phrases: string[][]; words: string[] };

export function parseSearch(q: string): SearchTerms {
  const phrases: string[][] = [];
  const rest = q.replace(/"([^"]*)"/g, (_, inner: string) => {
    const words = wordsOf(inner);
    if (words.length) phrases.push(words);
    return " ";
  });
  const words = wordsOf(rest);
  const keptPhrases = phrases.slice(0, MAX_TERMS);
  return { phrases: keptPhrases, words: words.slice(0, Math.max(0, MAX_TERMS - keptPhrases.length)) };
}

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
    ...terms.words.map((word) => `terms : ${quoted(keyed([word]))}${[...word].length > 1 ? "*" : ""}`),
  ].join(" AND ");
}

/** The scope token of a chatroom id: its hex digits after "c". */
export const chatroomScope = (id: string) => `c${id.replace(/[^0-9a-zA-Z]/g, "")}`;

/**
 * A message's words as the index stores them, one space between each: the statement that stores them
 * puts the user's key in front of every word (search.terms.ts). Empty when the text holds no word.
 */
export const wordsOfText = (text: string) => wordsOf(text).join(" ");

/**
 * Where each word of `text` is, as [start, end) UTF-16 offsets: the same words the index holds, so the
 * snippet marks what the search matched.
 */
export function wordSpans(text: string): { word: string; start: number; end: number }[] {
  return [...text.matchAll(WORD)]
    .filter((match) => HAS_TEXT.test(match[0]))
    .map((match) => ({ word: match[0], start: match.index, end: match.index + match[0].length }));
}

/** A word as unicode61 with remove_diacritics 2 compares it: case and diacritics folded. */
export const foldWord = (word: string) => word.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
