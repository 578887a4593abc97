import type { Database } from "./db/client";

export type AppEnv = {
  Bindings: Env;
  Variables: {
    requestId: string;
    db: Database;
    /** Set by requireAuth; only read on routes behind it. */
    userId: string;
    /** Set by requireAuth: the token version the caller authenticated with. */
    tokenVersion: number;
    /** Set by requireAuth: the `jti` of the bearer token (of the token a stream ticket came from, if known). */
    tokenId: string | undefined;
    /** Set by requireAuth: when the bearer token expires (epoch seconds); unset for a stream ticket. */
    tokenExpiresAt: number | undefined;
  };
};
