export const toIso = (date: Date | null) => (date ? date.toISOString() : null);

/** The next 00:00 UTC after `now`: when the daily prompt quota resets. */
export function nextUtcMidnight(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

export const secondsUntil = (later: Date, now: Date) =>
  Math.max(0, Math.ceil((later.getTime() - now.getTime()) / 1000));
