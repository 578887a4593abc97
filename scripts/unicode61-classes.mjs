// Which characters SQLite FTS5's unicode61 tokenizer (remove_diacritics 2) keeps inside a word, where that
// differs from JavaScript's Unicode classes: letters, digits and private-use characters it splits on
// (assigned after its Unicode 6.1 tables), and marks it keeps (the Latin diacritics it folds away). Asks the
// SQLite of workerd's local D1 itself, one probe "a<char>b" per character, and prints the two classes
// for src/features/search/unicode61.ts. Run: node scripts/unicode61-classes.mjs
import { convertV4MiniflareOptions, Miniflare } from "miniflare";

const mf = new Miniflare(
  convertV4MiniflareOptions({
    modules: true,
    script: "export default { fetch() { return new Response(null) } }",
    d1Databases: ["DB"],
  }),
);
const db = await mf.getD1Database("DB");
await db.prepare("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 2')").run();
await db.prepare("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')").run();

const word = /[\p{L}\p{N}\p{Co}]/u;
const mark = /\p{M}/u;
const probes = [];
for (let cp = 0x80; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const char = String.fromCodePoint(cp);
  if (word.test(char) || mark.test(char)) probes.push(cp);
}
const splits = [];
const joins = [];
const CHUNK = 4000;
for (let start = 0; start < probes.length; start += CHUNK) {
  const chunk = probes.slice(start, start + CHUNK);
  await db.prepare("DELETE FROM t").run();
  await db
    .prepare("INSERT INTO t (rowid, x) VALUES (1, ?1)")
    .bind(chunk.map((cp) => `a${String.fromCodePoint(cp)}b`).join(" "))
    .run();
  const { results } = await db.prepare('SELECT term, "offset" AS o FROM v ORDER BY o').all();
  let i = 0;
  for (const cp of chunk) {
    const kept = results[i]?.term !== "a";
    i += kept ? 1 : 2;
    const isWord = word.test(String.fromCodePoint(cp));
    if (isWord && !kept) splits.push(cp);
    if (!isWord && kept) joins.push(cp);
  }
  if (i !== results.length) throw new Error(`chunk at ${start}: ${results.length} tokens, ${i} expected`);
}
await mf.dispose();

/** Code points as a regex class body of ranges. */
function ranges(cps) {
  const out = [];
  for (let i = 0; i < cps.length; ) {
    let j = i;
    while (j + 1 < cps.length && cps[j + 1] === cps[j] + 1) j++;
    const hex = (cp) => `\\u{${cp.toString(16)}}`;
    out.push(i === j ? hex(cps[i]) : `${hex(cps[i])}-${hex(cps[j])}`);
    i = j + 1;
  }
  return out.join("");
}
console.log(JSON.stringify({ probed: probes.length, splits: splits.length, joins: joins.length }));
console.log(`SPLIT = "${ranges(splits)}"`);
console.log(`JOIN = "${ranges(joins)}"`);
