import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { forgetCachedVersion } from "../src/features/chatrooms/chatrooms.cache";
import { call, countingD1, createChatroom, expectError, verifiedUser } from "./helpers";
import { expectLogged } from "./logs";

const isListKey = (key: unknown): key is string => typeof key === "string" && key.startsWith("chatrooms:");

type KvKey = string | string[];
/**
 * The real KV, with `get` and `put` passed through the interceptors given: each sees every key (a
 * chatroom list's, or auth's bulk revocation read) and `next()`, the real call.
 */
function interceptKv(intercept: {
  get?: (key: KvKey, next: () => unknown) => unknown;
  put?: (key: KvKey, next: () => unknown) => unknown;
}): KVNamespace {
  return new Proxy(env.CACHE, {
    get(target, property) {
      const around = property === "get" ? intercept.get : property === "put" ? intercept.put : undefined;
      const value = Reflect.get(target, property, target);
      if (around && typeof value === "function")
        return (key: KvKey, ...rest: unknown[]) => around(key, () => value.call(target, key, ...rest));
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("POST /api/chatroom", () => {
  it("returns 201 with the trimmed name and timestamps", async () => {
    const { token } = await verifiedUser();
    const res = await call("POST", "/api/chatroom", { token, body: { name: "  Trip planning  " } });
    expect(res.status).toBe(201);
    expect(res.body.chatroom).toEqual({
      id: expect.any(String),
      name: "Trip planning",
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      lastMessageAt: null,
      activeLeafId: null,
      systemInstruction: null,
      model: null,
    });
  });

  it("returns 409 CHATROOM_NAME_TAKEN for the same name in another case, including non-ASCII letters", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token, "Ärger Über Öl");
    expectError(
      await call("POST", "/api/chatroom", { token, body: { name: "ärger über öl" } }),
      409,
      "CHATROOM_NAME_TAKEN",
    );
  });

  it("lets two users use the same name", async () => {
    const [a, b] = await Promise.all([verifiedUser(), verifiedUser()]);
    await createChatroom(a.token, "Shared name");
    expect((await call("POST", "/api/chatroom", { token: b.token, body: { name: "Shared name" } })).status).toBe(201);
  });

  it.each([
    ["a blank name", { name: "   " }],
    ["a name over 100 characters", { name: "x".repeat(101) }],
    ["a null name", { name: null }],
    ["a numeric name", { name: 42 }],
  ])("returns 400 VALIDATION_FAILED for %s", async (_label, body) => {
    const { token } = await verifiedUser();
    expectError(await call("POST", "/api/chatroom", { token, body }), 400, "VALIDATION_FAILED");
  });

  it("requires a token", async () => {
    expectError(await call("POST", "/api/chatroom", { body: { name: "x" } }), 401, "UNAUTHORIZED");
    expectError(await call("GET", "/api/chatroom"), 401, "UNAUTHORIZED");
  });

  it.each([
    "Robert'); DROP TABLE chatrooms;--",
    "100% _done_ \\ %_%",
    "🚀 Launch 👩🏽‍💻 plans",
    '"quoted" <b>tags</b> & ampersands',
  ])("round-trips the name %j exactly through create, get, list and rename", async (name) => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token, name);
    expect(room.name).toBe(name);
    expect((await call("GET", `/api/chatroom/${room.id}`, { token })).body.chatroom.name).toBe(name);
    const list = await call("GET", "/api/chatroom", { token });
    expect(list.body.chatrooms.map((r: { name: string }) => r.name)).toEqual([name]);
    const renamed = await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name: `${name}!` } });
    expect(renamed.body.chatroom.name).toBe(`${name}!`);
    // A LIKE-style pattern must not match other names.
    expectError(await call("POST", "/api/chatroom", { token, body: { name: `${name}!` } }), 409, "CHATROOM_NAME_TAKEN");
    expect((await call("POST", "/api/chatroom", { token, body: { name: "%" } })).status).toBe(201);
  });
});

describe("GET /api/chatroom (KV-cached list)", () => {
  it("returns an empty array for a new user", async () => {
    const { token } = await verifiedUser();
    const res = await call("GET", "/api/chatroom", { token });
    expect(res.status).toBe(200);
    expect(res.body.chatrooms).toEqual([]);
  });

  it("answers MISS, then HIT with the same list", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token, "One");
    const first = await call("GET", "/api/chatroom", { token });
    const second = await call("GET", "/api/chatroom", { token });
    expect(first.headers.get("X-Cache")).toBe("MISS");
    expect(second.headers.get("X-Cache")).toBe("HIT");
    expect(second.body.chatrooms).toEqual(first.body.chatrooms);
  });

  it("is never stale for its owner after create, rename and delete", async () => {
    const { token } = await verifiedUser();
    const names = async () => {
      await call("GET", "/api/chatroom", { token }); // warm the cache
      const res = await call("GET", "/api/chatroom", { token });
      return res.body.chatrooms.map((r: { name: string }) => r.name);
    };
    const a = await createChatroom(token, "Alpha");
    expect(await names()).toEqual(["Alpha"]);
    await createChatroom(token, "Beta");
    expect(await names()).toEqual(["Beta", "Alpha"]);
    await call("PATCH", `/api/chatroom/${a.id}`, { token, body: { name: "Alpha 2" } });
    expect(await names()).toEqual(["Alpha 2", "Beta"]);
    await call("DELETE", `/api/chatroom/${a.id}`, { token });
    expect(await names()).toEqual(["Beta"]);
  });

  it("keeps the triggers that version the cached list (a table rebuild would drop them silently)", async () => {
    const triggers = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'chatrooms' ORDER BY name",
    ).all<{ name: string }>();
    expect(triggers.results.map((row) => row.name)).toEqual([
      "chatrooms_list_version_delete",
      "chatrooms_list_version_insert",
      "chatrooms_list_version_update",
    ]);
  });

  it("serves a cached list with one D1 round trip (the list version), beside its one KV read", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token);
    await call("GET", "/api/chatroom", { token });
    const { binding, counter } = countingD1(env.DB);
    const listReads: string[] = [];
    const kv = interceptKv({
      get: (key, next) => {
        if (isListKey(key)) listReads.push(key);
        return next();
      },
    });
    const res = await call("GET", "/api/chatroom", { token, env: { ...env, DB: binding, CACHE: kv } });
    expect(res.headers.get("X-Cache")).toBe("HIT");
    expect(counter.roundTrips).toBe(1);
    expect(listReads).toHaveLength(1);
  });

  it("reads a changed list from D1 in the same round trip as its version, and caches it", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token, "First");
    await call("GET", "/api/chatroom", { token });
    await createChatroom(token, "Second");
    const { binding, counter } = countingD1(env.DB);
    const changed = await call("GET", "/api/chatroom", { token, env: { ...env, DB: binding } });
    expect(changed.headers.get("X-Cache")).toBe("MISS");
    expect(changed.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["Second", "First"]);
    expect(counter.roundTrips).toBe(1);
    const again = await call("GET", "/api/chatroom", { token });
    expect(again.headers.get("X-Cache")).toBe("HIT");
    expect(again.body.chatrooms).toEqual(changed.body.chatrooms);
  });

  it("reads the list from D1 when KV has lost the version it was cached under", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token, "Kept");
    await call("GET", "/api/chatroom", { token });
    // An empty namespace stands for an expired or evicted entry: the version is unchanged, the list gone.
    const lost = interceptKv({ get: (key, next) => (isListKey(key) ? null : next()) });
    const { binding, counter } = countingD1(env.DB);
    const res = await call("GET", "/api/chatroom", { token, env: { ...env, DB: binding, CACHE: lost } });
    expect(res.headers.get("X-Cache")).toBe("MISS");
    expect(res.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["Kept"]);
    expect(counter.roundTrips).toBe(2);
  });

  it("does not write a list KV already holds, as an isolate that has not seen the user would", async () => {
    const { token, user } = await verifiedUser();
    await createChatroom(token, "Once");
    await call("GET", "/api/chatroom", { token });
    const { list_version: version } = (await env.DB.prepare("SELECT list_version FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ list_version: number }>()) as { list_version: number };
    forgetCachedVersion(user.id, version); // as in a fresh isolate
    const puts: string[] = [];
    const kv = interceptKv({
      put: (key, next) => {
        puts.push(String(key));
        return next();
      },
    });
    const fresh = await call("GET", "/api/chatroom", { token, env: { ...env, CACHE: kv } });
    expect(fresh.headers.get("X-Cache")).toBe("MISS");
    expect(fresh.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["Once"]);
    expect(puts).toEqual([]);
    // It knows the version now: the next read is served from KV.
    expect((await call("GET", "/api/chatroom", { token })).headers.get("X-Cache")).toBe("HIT");
  });

  it("replaces a cached list once D1 is rewound (Time Travel) below the version this isolate knows", async () => {
    const { token, user } = await verifiedUser();
    await createChatroom(token, "Before");
    const versionOf = async () =>
      (
        (await env.DB.prepare("SELECT list_version FROM users WHERE id = ?").bind(user.id).first()) as {
          list_version: number;
        }
      ).list_version;
    const before = await versionOf();
    await call("GET", "/api/chatroom", { token }); // caches the list at `before`
    await createChatroom(token, "Lost");
    await call("GET", "/api/chatroom", { token }); // caches and remembers a later version
    // A restore takes the rooms and the version back; a different change then reaches `before` again.
    await env.DB.prepare("DELETE FROM chatrooms WHERE user_id = ? AND name = 'Lost'").bind(user.id).run();
    await env.DB.prepare("UPDATE users SET list_version = ? WHERE id = ?")
      .bind(before - 1, user.id)
      .run();
    await env.DB.prepare("UPDATE chatrooms SET name = 'After' WHERE user_id = ?").bind(user.id).run();
    expect(await versionOf()).toBe(before);
    const rewound = await call("GET", "/api/chatroom", { token });
    expect(rewound.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["After"]);
    const again = await call("GET", "/api/chatroom", { token });
    expect(again.headers.get("X-Cache")).toBe("HIT");
    expect(again.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["After"]);
  });

  it("serves the cached list as KV holds it, in the same JSON, and reads D1 when KV holds anything else", async () => {
    const { token, user } = await verifiedUser();
    await createChatroom(token, "Kept");
    const miss = await call("GET", "/api/chatroom", { token });
    const hit = await call("GET", "/api/chatroom", { token });
    expect(hit.headers.get("X-Cache")).toBe("HIT");
    expect(hit.headers.get("Content-Type")).toBe(miss.headers.get("Content-Type"));
    expect(hit.body).toEqual(miss.body);
    const { list_version: version } = (await env.DB.prepare("SELECT list_version FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ list_version: number }>()) as { list_version: number };
    await env.CACHE.put(`chatrooms:list:${user.id}:${version}`, "not a list");
    const fallback = await call("GET", "/api/chatroom", { token });
    expect(fallback.headers.get("X-Cache")).toBe("MISS");
    expect(fallback.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["Kept"]);
    const mended = await call("GET", "/api/chatroom", { token });
    expect(mended.headers.get("X-Cache")).toBe("HIT");
    expect(mended.body).toEqual(miss.body);
  });

  it("only ever lists the caller's own rooms", async () => {
    const [a, b] = await Promise.all([verifiedUser(), verifiedUser()]);
    await createChatroom(a.token, "Mine");
    const res = await call("GET", "/api/chatroom", { token: b.token });
    expect(res.body.chatrooms).toEqual([]);
  });
});

describe("GET, PATCH, DELETE /api/chatroom/:id", () => {
  it("returns the room with an empty message list", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token, "Detail");
    const res = await call("GET", `/api/chatroom/${room.id}`, { token });
    expect(res.status).toBe(200);
    expect(res.body.chatroom).toMatchObject({ id: room.id, name: "Detail", messages: [] });
  });

  it("renames, allowing a change of case only, and refuses a name another room has", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token, "Work");
    await createChatroom(token, "Home");
    const recased = await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name: "WORK" } });
    expect(recased.status).toBe(200);
    expect(recased.body.chatroom.name).toBe("WORK");
    expectError(
      await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name: "home" } }),
      409,
      "CHATROOM_NAME_TAKEN",
    );
  });

  it("deletes the room and its messages", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    expect(
      (await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "hi" } })).status,
    ).toBe(202);
    const res = await call("DELETE", `/api/chatroom/${room.id}`, { token });
    expect(res.status).toBe(200);
    expectError(await call("GET", `/api/chatroom/${room.id}`, { token }), 404, "NOT_FOUND");
    const left = await env.DB.prepare("SELECT count(*) AS n FROM messages WHERE chatroom_id = ?")
      .bind(room.id)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("answers 404 for another user's room on every route, and changes nothing", async () => {
    const [owner, other] = await Promise.all([verifiedUser(), verifiedUser()]);
    const room = await createChatroom(owner.token, "Private");
    const sent = await call("POST", `/api/chatroom/${room.id}/message`, {
      token: owner.token,
      body: { userMessage: "secret" },
    });
    const promptId = sent.body.prompt.id;
    const token = other.token;
    const attempts = [
      call("GET", `/api/chatroom/${room.id}`, { token }),
      call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name: "Hijacked" } }),
      call("DELETE", `/api/chatroom/${room.id}`, { token }),
      call("GET", `/api/chatroom/${room.id}/messages`, { token }),
      call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "hi" } }),
      call("GET", `/api/chatroom/${room.id}/message/${promptId}`, { token }),
      call("POST", `/api/chatroom/${room.id}/message/${promptId}/retry`, { token }),
    ];
    for (const res of await Promise.all(attempts)) expectError(res, 404, "NOT_FOUND");
    const still = await call("GET", `/api/chatroom/${room.id}`, { token: owner.token });
    expect(still.body.chatroom.name).toBe("Private");
    expect(still.body.chatroom.messages).toHaveLength(1);
    const me = await call("GET", "/api/user/me", { token });
    expect(me.body.user.usage.used).toBe(0);
  });

  it("answers 404 for unknown ids", async () => {
    const { token } = await verifiedUser();
    expectError(await call("GET", "/api/chatroom/does-not-exist", { token }), 404, "NOT_FOUND");
    expectError(await call("DELETE", `/api/chatroom/${crypto.randomUUID()}`, { token }), 404, "NOT_FOUND");
  });
});

describe("when the chatroom cache fails", () => {
  /** The real KV, except that chatroom-list keys refuse (`failing`) reads, writes or the first write. */
  function flakyKv(failing: { get?: boolean; put?: boolean; firstPut?: boolean }) {
    const puts: string[] = [];
    const kv = interceptKv({
      get: (key, next) => (failing.get && isListKey(key) ? Promise.reject(new Error("KV GET failed: 500")) : next()),
      put: (key, next) => {
        if (!isListKey(key)) return next();
        puts.push(key);
        if (failing.put || (failing.firstPut && puts.length === 1))
          return Promise.reject(new Error("KV PUT failed: 429 Too Many Requests"));
        return next();
      },
    });
    return { env: { ...env, CACHE: kv }, puts };
  }

  it("still answers 201 when KV refuses a list write, and the list is fresh afterwards", async () => {
    const { token, user } = await verifiedUser();
    const flaky = flakyKv({ firstPut: true });
    // This read's list write is the one refused.
    expect((await call("GET", "/api/chatroom", { token, env: flaky.env })).status).toBe(200);
    expect(flaky.puts).toHaveLength(1);
    const res = await call("POST", "/api/chatroom", { token, body: { name: "Burst" }, env: flaky.env });
    expect(res.status).toBe(201);
    const list = await call("GET", "/api/chatroom", { token, env: flaky.env });
    expect(list.body.chatrooms.map((r: { name: string }) => r.name)).toEqual(["Burst"]);
    expectLogged("error", "chatroom list not cached", { userId: user.id });
  });

  it("still creates, lists, renames, deletes and sends, from D1", async () => {
    const { token, user } = await verifiedUser();
    const broken = flakyKv({ get: true, put: true }).env;
    const created = await call("POST", "/api/chatroom", { token, body: { name: "Offline cache" }, env: broken });
    expect(created.status).toBe(201);
    const id = created.body.chatroom.id;
    const list = await call("GET", "/api/chatroom", { token, env: broken });
    expect(list.status).toBe(200);
    expect(list.body.chatrooms.map((room: { id: string }) => room.id)).toEqual([id]);
    expect((await call("PATCH", `/api/chatroom/${id}`, { token, body: { name: "Renamed" }, env: broken })).status).toBe(
      200,
    );
    const sent = await call("POST", `/api/chatroom/${id}/message`, { token, body: { userMessage: "hi" }, env: broken });
    expect(sent.status).toBe(202);
    expect((await call("DELETE", `/api/chatroom/${id}`, { token, env: broken })).status).toBe(200);
    expectLogged("error", "chatroom list not cached", { userId: user.id });
    // Each change's stamp write is retried once, 1.1 s later, after its response.
  }, 15_000);

  it("writes no KV key more than once however fast the rooms change (KV takes one write per second per key)", async () => {
    const { token } = await verifiedUser();
    const flaky = flakyKv({});
    const room = await call("POST", "/api/chatroom", { token, body: { name: "Busy" }, env: flaky.env });
    const id = room.body.chatroom.id;
    for (let i = 0; i < 5; i++) {
      await call("POST", `/api/chatroom/${id}/message`, { token, body: { userMessage: `quick ${i}` }, env: flaky.env });
      const list = await call("GET", "/api/chatroom", { token, env: flaky.env });
      // Never stale: the list shows this send's activity at once.
      expect(list.body.chatrooms[0].lastMessageAt).not.toBeNull();
      expect(list.headers.get("X-Cache")).toBe("MISS");
    }
    await call("PATCH", `/api/chatroom/${id}`, { token, body: { name: "Renamed" }, env: flaky.env });
    const renamed = await call("GET", "/api/chatroom", { token, env: flaky.env });
    expect(renamed.body.chatrooms[0].name).toBe("Renamed");
    expect(flaky.puts.length).toBeGreaterThan(0);
    expect(new Set(flaky.puts).size).toBe(flaky.puts.length);
  });
});
