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
  };
};
