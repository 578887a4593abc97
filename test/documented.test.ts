import { describe, expect, it } from "vitest";
import { expectDocumented } from "./documented";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
  status,
  headers: new Headers({ "Content-Type": "application/json", ...headers }),
  text: JSON.stringify(body),
});
const notFound = { success: false, message: "No route", error: { code: "NOT_FOUND" } };

describe("the check every test answer goes through", () => {
  it("accepts an answer the document describes", async () => {
    await expectDocumented("GET", "/", json(200, { success: true, message: "Backend is LIVE" }));
    await expectDocumented("GET", "/api/nope", json(404, notFound));
    await expectDocumented("PUT", "/", json(405, notFound, { Allow: "GET, HEAD, OPTIONS" }));
  });

  it.each([
    ["a field the schema does not list", "GET", "/", json(200, { success: true, message: "ok", extra: 1 })],
    ["a wrong type", "GET", "/", json(200, { success: "yes", message: "ok" })],
    ["an undocumented status", "GET", "/", json(418, notFound)],
    ["a success on a path the document does not list", "GET", "/api/nope", json(200, { success: true })],
    ["a 405 without Allow", "PUT", "/", json(405, notFound)],
    ["a body that is not the error envelope", "GET", "/api/user/me", json(401, { error: "nope" })],
  ])("refuses %s", async (_label, method, path, answer) => {
    await expect(expectDocumented(method, path, answer)).rejects.toThrow(/Undocumented answer/);
  });
});
