const encoder = new TextEncoder();

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(value: string): Uint8Array {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

/** Compares two byte strings in time that depends only on their lengths. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

export function timingSafeEqualText(a: string, b: string): boolean {
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

export async function hmacSha256(secret: string, message: string): Promise<ArrayBuffer> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", key, encoder.encode(message));
}

/** HS256 keys by what they were made from, imported once per isolate. */
const hs256Keys = new Map<string, Promise<CryptoKey>>();
const MAX_CACHED_KEYS = 8;

/**
 * An HS256 signing and verifying key, imported once per isolate rather than on every token check (jose
 * takes a CryptoKey as it takes raw bytes). `id` names what the bytes come from (say, the secret); a
 * secret rotation brings a new id, so a new key; only the last few are kept.
 */
export function hs256Key(id: string, bytes: () => Uint8Array | Promise<Uint8Array>): Promise<CryptoKey> {
  let key = hs256Keys.get(id);
  if (!key) {
    key = Promise.resolve(bytes()).then((raw) =>
      crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]),
    );
    const made = key;
    made.catch(() => {
      if (hs256Keys.get(id) === made) hs256Keys.delete(id);
    });
    if (hs256Keys.size >= MAX_CACHED_KEYS) hs256Keys.clear();
    hs256Keys.set(id, key);
  }
  return key;
}
