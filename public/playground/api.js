// How a browser uses the API: JSON requests with the bearer token, and live streams through
// EventSource, which cannot send an Authorization header and so opens them with a stream ticket.

const TOKEN_KEY = "gemini-backend.authToken";
const LIVE_EVENTS = ["prompt", "delta", "retrying", "reply", "branch", "chatroom", "reset", "deleted", "revoked"];

/** The token lives in sessionStorage: it is gone when the tab closes, and each tab signs in on its own. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  start(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
    tickets.clear();
  },
};

/** An error answer: `message` is the API's own words, `code` its error.code. */
export class ApiError extends Error {
  constructor(status, answer) {
    super(answer?.message ?? `The API answered ${status} without a message`);
    this.status = status;
    this.code = answer?.error?.code ?? "UNKNOWN";
    this.details = answer?.error?.details ?? [];
  }
}

/** One API call: `api("POST", "/chatroom", { name })` resolves to the JSON answer or throws ApiError. */
export async function api(method, path, body) {
  const headers = new Headers();
  if (session.token) headers.set("Authorization", `Bearer ${session.token}`);
  if (body !== undefined) headers.set("Content-Type", "application/json");
  let response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { message: "The API cannot be reached. Is the Worker running?" });
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok || answer?.success !== true) throw new ApiError(response.status, answer);
  return answer;
}

/** A GET whose answer is a file (the export): the Response, or ApiError for an error answer. */
export async function download(path) {
  let response;
  try {
    response = await fetch(`/api${path}`, { headers: { Authorization: `Bearer ${session.token}` } });
  } catch {
    throw new ApiError(0, { message: "The API cannot be reached. Is the Worker running?" });
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response;
}

/** chatroomId → { ticket, renewAt }. A ticket opens that chatroom's streams any number of times for 300 s. */
const tickets = new Map();

async function streamUrl(chatroomId, path, query = {}) {
  let cached = tickets.get(chatroomId);
  if (!cached || Date.now() > cached.renewAt) {
    const { ticket, expiresIn } = await api("POST", `/chatroom/${chatroomId}/stream-ticket`);
    cached = { ticket, renewAt: Date.now() + (expiresIn - 60) * 1000 };
    tickets.set(chatroomId, cached);
  }
  return `/api/chatroom/${chatroomId}${path}?${new URLSearchParams({ ...query, ticket: cached.ticket })}`;
}

/**
 * Everything that happens in a chatroom, live (GET …/events). After a dropped connection the browser
 * reconnects by itself, sending Last-Event-ID. When the server refuses a reconnect (most often because
 * the ticket expired) the stream is closed for good, so a new ticket is fetched and the stream resumes
 * after the last event seen, with `?lastEventId=`.
 *
 * `onOpen` runs on every (re)connection, `onEvent(name, data)` for each event, `onError` for an API
 * error while getting a ticket, `onState("live" | "reconnecting")` as the connection comes and goes.
 */
export function watchChatroom(chatroomId, { onOpen, onEvent, onError, onState }) {
  let source;
  let lastEventId = "";
  let failures = 0;
  let timer;
  let closed = false;

  const retryLater = () => {
    onState("reconnecting");
    failures += 1;
    timer = setTimeout(connect, Math.min(30_000, 500 * 2 ** failures));
  };

  async function connect() {
    try {
      const url = await streamUrl(chatroomId, "/events", lastEventId ? { lastEventId } : {});
      if (closed) return;
      source = new EventSource(url);
    } catch (err) {
      onError(err);
      // Signed out, or the chatroom is gone: there is nothing to resume.
      if (err.status !== 401 && err.status !== 404) retryLater();
      return;
    }
    source.addEventListener("open", () => {
      failures = 0;
      onState("live");
      onOpen();
    });
    for (const name of LIVE_EVENTS) {
      source.addEventListener(name, (event) => {
        lastEventId = event.lastEventId;
        // The session that opened the stream ended (logout, password change): nothing to resume.
        if (name === "revoked" || name === "deleted") {
          closed = true;
          source.close();
        }
        onEvent(name, JSON.parse(event.data));
      });
    }
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return onState("reconnecting");
      tickets.delete(chatroomId);
      retryLater();
    });
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}

/**
 * One prompt from the text written so far until its reply (GET …/message/:id/stream): `prompt`, one
 * `delta` with all the text so far, then the live events. Resolves when the stream is over, or when
 * `signal` aborts (the prompt left the page).
 */
export async function followPrompt(chatroomId, promptId, onEvent, signal) {
  const url = await streamUrl(chatroomId, `/message/${promptId}/stream`);
  if (signal?.aborted) return;
  const source = new EventSource(url);
  return new Promise((resolve) => {
    const end = () => {
      source.close();
      resolve();
    };
    signal?.addEventListener("abort", end);
    for (const name of LIVE_EVENTS) {
      source.addEventListener(name, (event) => {
        onEvent(name, JSON.parse(event.data));
        if (name === "reply" || name === "deleted" || name === "revoked") end();
      });
    }
    // The stream ends after `reply`; EventSource would reconnect and start it over, so any error ends it.
    source.addEventListener("error", end);
  });
}
