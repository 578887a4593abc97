import type { Database } from "../../db/client";
import { applyTitle, toChatroomResponse } from "../chatrooms";
import { announceChatroom } from "../live";
import { generateTitle } from "./gemini";

/** A title is one line of at most this many characters. */
export const TITLE_MAX = 60;
/** How much of the first exchange the title is asked from. */
const EXCERPT = 1000;

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/gu;

/**
 * What the model answered, made a title: its first non-empty line, without markdown marks, quotes,
 * control characters or final punctuation, at most 60 characters (cut at a word where one is near).
 * Empty when nothing usable is left.
 */
export function cleanTitle(raw: string): string {
  const line =
    raw
      .normalize("NFC")
      .split(/\r?\n/)
      .map((candidate) => candidate.trim())
      .find((candidate) => candidate.length > 0) ?? "";
  let title = line
    .replace(CONTROL, "")
    .replace(/^[#*_>\s-]+|[*_\s]+$/g, "")
    .replace(/^title\s*:[*_\s]*/i, "")
    .replace(/^["'“”‘’«»`]+|["'“”‘’«»`]+$/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/[.!?:;,。、]+$/u, "")
    .trim();
  const chars = [...title];
  if (chars.length > TITLE_MAX) {
    const cut = chars.slice(0, TITLE_MAX).join("");
    const space = cut.lastIndexOf(" ");
    title = (space >= TITLE_MAX / 2 ? cut.slice(0, space) : cut).trim();
  }
  return title;
}

/** The title, then "title (2)" … "title (20)": what a room is named, the first its owner has free. */
export function titleCandidates(title: string): string[] {
  return [
    title,
    ...Array.from(
      { length: 19 },
      (_, i) =>
        `${[...title]
          .slice(0, TITLE_MAX - 5)
          .join("")
          .trim()} (${i + 2})`,
    ),
  ];
}

/**
 * Names a chatroom created without a name after its first completed reply: a short title from Gemini
 * (the default model, not streamed, no quota unit), unique among the user's names, never over a name the
 * user set meanwhile. Every device gets a `chatroom` event. A failure leaves the name null and fails
 * nothing else.
 */
export async function nameUntitledChatroom(
  env: Env,
  db: Database,
  exchange: { chatroomId: string; prompt: string; reply: string },
) {
  try {
    const conversation = `User: ${exchange.prompt.slice(0, EXCERPT)}\n\nAssistant: ${exchange.reply.slice(0, EXCERPT)}`;
    const title = cleanTitle(await generateTitle(env, conversation));
    if (!title) throw new Error("the model's title was empty");
    const room = await applyTitle(db, exchange.chatroomId, titleCandidates(title), new Date());
    if (room) await announceChatroom(env, toChatroomResponse(room));
  } catch (err) {
    console.warn(
      JSON.stringify({
        level: "warn",
        message: "chatroom title failed",
        chatroomId: exchange.chatroomId,
        error: err instanceof Error ? err.message : String(err),
      }),
    );
  }
}
