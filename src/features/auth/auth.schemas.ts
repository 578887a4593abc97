import { z } from "@hono/zod-openapi";
import type { User } from "../../db/schema";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { textField } from "../../lib/text";
import { toIso } from "../../lib/time";
import { PHONE_FORM } from "./phone";

export const PhoneNumberSchema = z
  .string()
  .trim()
  // Both forms pass here; normalisePhone (phone.ts) decides about a number without + from env.
  .regex(/^\+?[1-9]\d{7,14}$/, `Phone number must be ${PHONE_FORM}`)
  .openapi({
    example: "+919876543210",
    description:
      "E.164: + and the country code, then the number (^\\+[1-9]\\d{7,14}$). A number without + (^[1-9]\\d{7,14}$, e.g. 9876543210) " +
      "is accepted only when the server sets DEFAULT_CALLING_CODE (e.g. 91) and is then stored as +<code><number> (+919876543210); " +
      "otherwise it is a 400 VALIDATION_FAILED that shows the expected form.",
  });

export const PasswordSchema = z
  .string()
  .min(8, "Password must be at least 8 characters")
  .max(72, "Password must be at most 72 characters")
  // One pattern, so the OpenAPI document carries the whole rule (it keeps only the first of several).
  .regex(/^(?=[\s\S]*[A-Za-z])(?=[\s\S]*\d)/, "Password must contain at least one letter and one digit")
  .openapi({ example: "s3cretPass", description: "8–72 characters with at least one letter and one digit" });

export const OtpSchema = z
  .string()
  .regex(/^\d{6}$/, "OTP must be 6 digits")
  .openapi({ example: "123456" });

export const SignupBodySchema = z
  .object({
    phoneNumber: PhoneNumberSchema,
    password: PasswordSchema,
    email: z
      .email()
      .max(254)
      .transform((email) => email.toLowerCase())
      .nullish()
      .openapi({ example: "asha@example.com", description: "Optional; unique, case-insensitive" }),
    fullName: textField({ field: "fullName", min: 2, max: 60, trim: true })
      .nullish()
      .openapi({ example: "Asha Rao", description: "2–60 characters, trimmed and NFC-normalised, one line" }),
  })
  .openapi("SignupRequest");

export const PhoneBodySchema = z.object({ phoneNumber: PhoneNumberSchema }).openapi("PhoneRequest");

export const VerifyOtpBodySchema = z
  .object({ phoneNumber: PhoneNumberSchema, otp: OtpSchema })
  .openapi("VerifyOtpRequest");

export const LoginBodySchema = z
  .object({ phoneNumber: PhoneNumberSchema, password: z.string().min(1).max(1024).openapi({ example: "s3cretPass" }) })
  .openapi("LoginRequest");

export const ResetPasswordBodySchema = z
  .object({ phoneNumber: PhoneNumberSchema, otp: OtpSchema, newPassword: PasswordSchema })
  .openapi("ResetPasswordRequest");

export const ChangePasswordBodySchema = z
  .object({
    currentPassword: z.string().min(1).max(1024).openapi({ example: "s3cretPass" }),
    newPassword: PasswordSchema.openapi({ example: "n3wPassw0rd" }),
  })
  .openapi("ChangePasswordRequest");

const exampleUser = {
  id: "0198a9e2-3c41-7b52-8d63-1f2e3d4c5b6a",
  phoneNumber: "+919876543210",
  email: "asha@example.com",
  fullName: "Asha Rao",
  verifiedAt: "2026-08-15T09:12:40.000Z",
  createdAt: "2026-08-15T09:12:03.000Z",
  updatedAt: "2026-08-15T09:12:40.000Z",
};

// Response schemas are docs-only (src/lib/openapi.ts): built by /openapi.json and /docs, not at startup.
// Examples per field: an object-level one would be inherited by the schemas that extend User.
export const UserSchema = docsOnly(() =>
  z
    .object({
      id: z.string().openapi({ example: exampleUser.id }),
      phoneNumber: z.string().openapi({ example: exampleUser.phoneNumber }),
      email: z.string().nullable().openapi({ example: exampleUser.email }),
      fullName: z.string().nullable().openapi({ example: exampleUser.fullName }),
      verifiedAt: z.string().nullable().openapi({ example: exampleUser.verifiedAt }),
      createdAt: z.string().openapi({ example: exampleUser.createdAt }),
      updatedAt: z.string().openapi({ example: exampleUser.updatedAt }),
    })
    .openapi("User"),
);

const TokenFields = docsOnly(() => ({
  authToken: z.string().openapi({ example: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTk4YTllMiJ9.c2lnbmF0dXJl" }),
  tokenType: z.literal("Bearer"),
  expiresIn: z.number().int().openapi({ description: "Seconds until the token expires", example: 86400 }),
}));

export const UserResponseSchema = docsOnly(() =>
  successSchema({ user: built(UserSchema) }).openapi({
    example: {
      success: true,
      message: "Account created; verify your phone number with an OTP",
      user: { ...exampleUser, verifiedAt: null, updatedAt: exampleUser.createdAt },
    },
  }),
);
export const AuthResponseSchema = docsOnly(() =>
  successSchema({ ...built(TokenFields), user: built(UserSchema) }).openapi("AuthResponse"),
);
export const TokenResponseSchema = docsOnly(() => successSchema(built(TokenFields)));
export const OtpIssuedSchema = docsOnly(() =>
  successSchema({
    otp: OtpSchema.optional().openapi({ description: "Only with OTP_DELIVERY=response (the mocked delivery)" }),
    expiresInSeconds: z.number().int().openapi({ example: 300 }),
  }).openapi("OtpIssued"),
);

export function toUserResponse(user: User): z.infer<typeof UserSchema> {
  return {
    id: user.id,
    phoneNumber: user.phoneNumber,
    email: user.email,
    fullName: user.fullName,
    verifiedAt: toIso(user.verifiedAt),
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}
