// A session with one of workerd's isolates through its V8 inspector (a Worker served with
// `inspectorPort`; `core:user:` is the Worker's own isolate): the bench's heap figures and CPU profiles.

/** A JSON-over-WebSocket session with one isolate's inspector (`core:user:` is the Worker's). */
export async function inspect(inspectorPort, isolate) {
  const socket = new WebSocket(`ws://127.0.0.1:${inspectorPort}/${isolate}`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`no inspector for ${isolate}`));
  });
  let id = 0;
  const waiting = new Map();
  // Events (heap snapshot chunks, console messages) are dropped: only answers to requests are wanted.
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    waiting.get(message.id)?.(message.result ?? {});
    waiting.delete(message.id);
  };
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      waiting.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => socket.close() };
}
