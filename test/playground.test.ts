import { describe, expect, it } from "vitest";
import { call, expectError } from "./helpers";

const assetPaths = (html: string) =>
  [...html.matchAll(/(?:src|href)="(\/playground\/[^"]+)"/g)].map((match) => match[1] ?? "");

describe("playground", () => {
  it("serves GET /playground as HTML with a strict Content-Security-Policy", async () => {
    const res = await call("GET", "/playground");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/html");
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.body).toContain('<script type="module" src="/playground/app.js"></script>');
  });

  it("serves the same page at /playground/", async () => {
    const [plain, slash] = await Promise.all([call("GET", "/playground"), call("GET", "/playground/")]);
    expect(slash.status).toBe(200);
    expect(slash.body).toBe(plain.body);
  });

  it("has no inline script or style and loads nothing from another host", async () => {
    const html: string = (await call("GET", "/playground")).body;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  it("serves every file the page loads (and the module app.js imports) with the same CSP", async () => {
    const html: string = (await call("GET", "/playground")).body;
    const app: string = (await call("GET", "/playground/app.js")).body;
    const imported = [...app.matchAll(/from "\.\/([\w-]+\.js)"/g)].map((match) => `/playground/${match[1]}`);
    const paths = [...assetPaths(html), ...imported];
    expect(paths).toEqual(
      expect.arrayContaining([
        "/playground/app.js",
        "/playground/api.js",
        "/playground/style.css",
        "/playground/icon.svg",
      ]),
    );
    const types: Record<string, string> = { js: "text/javascript", css: "text/css", svg: "image/svg+xml" };
    for (const path of paths) {
      const res = await call("GET", path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Content-Type"), path).toContain(types[path.split(".").pop() ?? ""]);
      expect(res.headers.get("Content-Security-Policy"), path).toContain("script-src 'self'");
    }
  });

  it("answers 304 to a revalidation of an unchanged file", async () => {
    const first = await call("GET", "/playground/app.js");
    const etag = first.headers.get("ETag");
    expect(etag).toBeTruthy();
    const again = await call("GET", "/playground/app.js", { headers: { "If-None-Match": etag ?? "" } });
    expect(again.status).toBe(304);
  });

  it("returns 404 NOT_FOUND in the error envelope for a file that is not there", async () => {
    expectError(await call("GET", "/playground/nope.js"), 404, "NOT_FOUND");
  });

  it("is linked from /docs", async () => {
    const docs: string = (await call("GET", "/docs")).body;
    expect(docs).toContain('href="/playground"');
  });
});
