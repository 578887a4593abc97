/** A D1 bookmark as D1 writes them: four hex groups (8-8-8-32). Anything else is ignored. */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/i;
export const BOOKMARK_HEADER = "x-d1-bookmark";

/**
 * Every request reads and writes D1 through one session (the D1 Sessions API), opened by the edge
 * middleware (edge.ts) with this constraint. Without a bookmark it starts at the primary, so it sees every
 * write made before it. A client that sends back the `x-d1-bookmark` of its last answer lets its reads be
 * served by a nearby replica that has caught up to that point: it still reads its own writes. Every
 * answer carries the session's latest bookmark. Writes always go to the primary (D1 does that within a
 * session); the queue consumer, the webhook's effects and the scheduled work use the database directly.
 */
export function sessionConstraint(sent: string | null): string {
  return sent && BOOKMARK.test(sent) ? sent : "first-primary";
}
