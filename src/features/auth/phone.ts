import { AppError } from "../../lib/errors";

const E164 = /^\+[1-9]\d{7,14}$/;
const NATIONAL = /^[1-9]\d{7,14}$/;
const CALLING_CODE = /^[1-9]\d{0,2}$/;

export const PHONE_FORM = "+ and the country code, then the number (E.164), e.g. +919876543210";

function phoneInvalid(message: string) {
  return new AppError(400, "VALIDATION_FAILED", message, [{ path: "phoneNumber", message }]);
}

/**
 * The E.164 form of a phone number from a request (API.md Conventions). Without `+` a number is only
 * taken as a national number of DEFAULT_CALLING_CODE; with no such variable it is refused rather than
 * guessed (`9876543210` would otherwise become +98 76543210, a number in Iran).
 */
export function normalisePhone(env: Env, phone: string): string {
  if (E164.test(phone)) return phone;
  const code = env.DEFAULT_CALLING_CODE?.trim() ?? "";
  if (!code) {
    throw phoneInvalid(`Phone number must start with ${PHONE_FORM}`);
  }
  if (!CALLING_CODE.test(code)) {
    // A deployment with a broken variable is our fault, not the client's: answer 500 and log it.
    throw new Error("DEFAULT_CALLING_CODE must be 1 to 3 digits without +, e.g. 91");
  }
  const full = `+${code}${phone}`;
  if (!NATIONAL.test(phone) || !E164.test(full)) {
    throw phoneInvalid(`Phone number must be ${PHONE_FORM}, or a number of country code +${code} without the +`);
  }
  return full;
}
