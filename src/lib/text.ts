import { z } from "@hono/zod-openapi";

/** C0 and C1 control characters and DEL; tab, line feed and carriage return are checked separately. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u;
const LINE_CONTROL = /[\t\n\r]/u;
/** A UTF-16 surrogate without its partner (JSON can carry one: "\ud800"). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;
/** What shows nothing: white space, format characters (zero-width, bidi marks) and the blank fillers. */
const INVISIBLE = /[\s\p{Cf}\u115f\u1160\u2800\u3164\uffa0]/gu;

type TextRules = {
  /** The field's name in messages. */
  field: string;
  min: number;
  max: number;
  /** Tab and newlines allowed (prompts); names are one line. */
  multiline?: boolean;
  /** Leading and trailing white space removed (names). */
  trim?: boolean;
};

/**
 * A text field as the contract wants it: NFC-normalised, no control characters (tab and newline only
 * where multi-line), no lone surrogate, something visible, within its length (counted in characters
 * after normalising and trimming). One issue per field, the first that applies; what it yields is
 * exactly what is stored and echoed.
 */
export function textField({ field, min, max, multiline = false, trim = false }: TextRules) {
  return (
    z
      .string()
      .transform((raw, ctx) => {
        const fail = (message: string) => {
          ctx.issues.push({ code: "custom", message, input: raw });
          return z.NEVER;
        };
        if (LONE_SURROGATE.test(raw)) return fail(`${field} must be valid Unicode text (it holds a lone surrogate)`);
        if (CONTROL.test(raw) || (!multiline && LINE_CONTROL.test(raw.trim()))) {
          return fail(
            multiline
              ? `${field} must not contain control characters (tab and newline are allowed)`
              : `${field} must not contain control characters or line breaks`,
          );
        }
        const text = trim ? raw.normalize("NFC").trim() : raw.normalize("NFC");
        if (text.replace(INVISIBLE, "") === "") return fail(`${field} must not be blank`);
        const length = [...text].length;
        if (length < min) return fail(`${field} must be at least ${min} characters`);
        if (length > max) return fail(`${field} must be at most ${max} characters`);
        return text;
      })
      // What the document can say of the same rules: something visible (two visible ends when a trimmed
      // field needs two characters); the full check is the server's.
      .openapi({
        type: "string",
        minLength: min,
        maxLength: max,
        pattern: trim && min >= 2 ? "\\S[\\s\\S]*\\S" : "\\S",
      })
  );
}
