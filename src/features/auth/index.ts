// What other features (and the auth middleware) may use of auth; everything else here is auth's own.
export { findUserById } from "./auth.repo";
export { toUserResponse } from "./auth.schemas";
export { ensureTokenCurrent } from "./revocation";
export { joseFailure, type TokenClaims, verifyToken } from "./tokens";
