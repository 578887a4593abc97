// The Stripe-Signature header exactly as Stripe sends it: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload"
// with the endpoint secret>. Web Crypto only, so the Stripe stub and the benchmark (Node) and the tests
// (workerd) all sign with this one function.
const encoder = new TextEncoder();

/** Signs `payload` at `t` (unix seconds, now by default): the header, and its parts for tests that tamper. */
export async function signStripePayload(payload, secret, t = Math.floor(Date.now() / 1000)) {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${t}.${payload}`));
  const v1 = Array.from(new Uint8Array(mac), (byte) => byte.toString(16).padStart(2, "0")).join("");
  return { header: `t=${t},v1=${v1}`, t, v1 };
}
