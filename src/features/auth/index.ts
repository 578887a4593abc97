// What other features (and the auth middleware) may use of auth; everything else here is auth's own.
export { findUserById } from "./auth.repo";
export { toUserResponse, UserSchema } from "./auth.schemas";
export { confirmPassword } from "./confirm-password";
export { ensureTokenCurrent, revokeTokenVersion } from "./revocation";
export { phoneSubject, userSubject } from "./throttle";
export { joseFailure, type TokenClaims, verifyToken } from "./tokens";
