import { toHex } from "./crypto";

/** The last id's millisecond and 12-bit sequence (RFC 9562 §6.2, method 1), per isolate. */
let lastMs = 0;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562): time-ordered, so sorting by id sorts by creation time. Ids made by one isolate
 * are strictly increasing, even within one millisecond (the Workers clock does not move during a
 * request): `rand_a` holds a sequence that starts at a random value below 2048 each new millisecond and
 * counts up; if it runs out, the id borrows the next millisecond. A clock that steps back is ignored.
 */
export function uuidv7(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = (crypto.getRandomValues(new Uint16Array(1))[0] ?? 0) & 0x7ff;
  } else if (++sequence > 0xfff) {
    lastMs++;
    sequence = 0;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let ms = lastMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = toHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `value` has the shape of an id this service makes (a UUID): anything else names nothing. */
export const isId = (value: string) => ID.test(value);
