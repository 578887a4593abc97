import type { SharedMessage } from "./shares.repo";

const STYLE =
  "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}" +
  "h1{font-size:1.4rem}.m{white-space:pre-wrap;padding:.75rem 1rem;border-radius:.75rem;margin:.75rem 0}" +
  ".user{background:#eef3ff}.assistant{background:#f5f5f7}.who{font-size:.8rem;color:#555;margin-bottom:.25rem}" +
  "footer{color:#666;font-size:.85rem;margin-top:2rem}";

let csp: Promise<string> | undefined;

/**
 * The page's CSP: nothing may load or run; its one inline style is allowed by its hash. The page needs
 * no script, so none can run even if text escaped its escaping.
 */
export function SHARE_PAGE_CSP() {
  csp ??= crypto.subtle.digest("SHA-256", new TextEncoder().encode(STYLE)).then((digest) => {
    const hash = btoa(String.fromCharCode(...new Uint8Array(digest)));
    return [
      "default-src 'none'",
      `style-src 'sha256-${hash}'`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; ");
  });
  return csp;
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);

/** The shared conversation as a page: every text escaped. */
export function renderSharePage(share: { chatroomName: string; createdAt: Date; messages: string }) {
  const messages = JSON.parse(share.messages) as SharedMessage[];
  const title = escapeHtml(share.chatroomName || "Shared conversation");
  const items = messages
    .map(
      (m) =>
        `<div class="m ${m.role === "user" ? "user" : "assistant"}"><div class="who">${m.role === "user" ? "Prompt" : "Gemini"}</div>${escapeHtml(m.content)}</div>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title><style>${STYLE}</style></head>
<body><main><h1>${title}</h1>
${items}
</main><footer>A read-only snapshot shared on ${escapeHtml(share.createdAt.toISOString().slice(0, 10))}.</footer></body></html>`;
}
