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
/** An FTS5 string: the words hold only letters, digits and marks, so no quote is ever inside. */
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
 * The MATCH expression for `terms` within `scope` (the owner's token, and a chatroom's), or undefined
 * when there is nothing to look for.
 */
export function matchExpression(terms: SearchTerms, scope: string[]): string | undefined {
  if (!terms.phrases.length && !terms.words.length) return undefined;
  return [
    ...scope.map((token) => `scope : "${token}"`),
    ...terms.phrases.map((phrase) => `content : ${quoted(phrase)}`),
    // One-character words match whole words only: as a prefix, one letter would merge most of the index.
    ...terms.words.map((word) => `content : ${quoted([word])}${[...word].length > 1 ? "*" : ""}`),
  ].join(" AND ");
}

/** The scope token of an id: its hex digits, after a letter saying what it is ("u" user, "c" chatroom). */
export const scopeToken = (kind: "u" | "c", id: string) => `${kind}${id.replace(/[^0-9a-zA-Z]/g, "")}`;
