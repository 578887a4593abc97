/** Which part of the API a canonical path belongs to: each part is loaded on its own (src/index.ts). */
export type RouteSet = "account" | "chat" | "billing" | "playground" | "everything" | "none";

export function routeSetOf(path: string): RouteSet {
  if (/^\/api\/(auth|user)(\/|$)/.test(path)) return "account";
  if (/^\/api\/(chatroom|search|shared|models)(\/|$)/.test(path) || path.startsWith("/s/")) return "chat";
  if (/^\/api\/billing(\/|$)/.test(path)) return "billing";
  if (path === "/playground" || path.startsWith("/playground/")) return "playground";
  if (path === "/openapi.json" || path === "/docs") return "everything";
  return "none";
}
