import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const timestamp = (name: string) => integer(name, { mode: "timestamp_ms" });

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    // Normalised with a leading "+".
    phoneNumber: text("phone_number").notNull(),
    // Lower-cased, so uniqueness is case-insensitive.
    email: text("email"),
    fullName: text("full_name"),
    passwordHash: text("password_hash").notNull(),
    // Bumped on every password change or reset; tokens carry the version they were issued for,
    // so a token minted before the change is refused even within the same second.
    tokenVersion: integer("token_version").notNull().default(0),
    verifiedAt: timestamp("verified_at"),
    createdAt: timestamp("created_at").notNull(),
    updatedAt: timestamp("updated_at").notNull(),
  },
  (t) => [uniqueIndex("users_phone_number_unique").on(t.phoneNumber), uniqueIndex("users_email_unique").on(t.email)],
);

export const OTP_PURPOSES = ["login", "reset"] as const;
export type OtpPurpose = (typeof OTP_PURPOSES)[number];

export const otps = sqliteTable(
  "otps",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose", { enum: OTP_PURPOSES }).notNull(),
    // HMAC-SHA256 of the code, keyed with a server secret: a leaked table does not reveal codes.
    codeHash: text("code_hash").notNull(),
    attempts: integer("attempts").notNull().default(0),
    expiresAt: timestamp("expires_at").notNull(),
    consumedAt: timestamp("consumed_at"),
    createdAt: timestamp("created_at").notNull(),
  },
  (t) => [index("otps_user_purpose_created_idx").on(t.userId, t.purpose, t.createdAt)],
);

export type User = typeof users.$inferSelect;
export type Otp = typeof otps.$inferSelect;
