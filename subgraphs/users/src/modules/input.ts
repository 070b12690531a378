import { appError, ErrorCode } from "@hv/kit";

/**
 * Input rules for everything people type. Each check names the field and the rule it broke, so a
 * mobile client can point at the right text box.
 */

// Controls (Cc), format characters (Cf: zero-width characters, bidi marks and overrides, soft
// hyphens, tag characters, the BOM), line/paragraph separators, lone surrogates, and the Hangul
// fillers that render as blanks: invisible or reordering characters that make names impersonate
// others or break layouts.
const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115f\u1160\u3164\uffa0]/u;

function bad(field: string, message: string): never {
  throw appError(ErrorCode.BAD_USER_INPUT, message, { field });
}

/** NFC-normalised, trimmed, single-line text of bounded length with no invisible tricks. */
export function cleanText(
  value: string,
  field: string,
  limits: { min: number; max: number; multiline?: boolean },
): string {
  const text = value.normalize("NFC").trim();
  const withoutNewlines = limits.multiline ? text.replace(/\r?\n/g, "") : text;
  if (INVISIBLE_OR_CONTROL.test(withoutNewlines))
    bad(field, `${field} contains control or invisible characters`);
  const length = [...text].length;
  if (length < limits.min)
    bad(
      field,
      limits.min === 1 ? `${field} must not be empty` : `${field} must be at least ${limits.min} characters`,
    );
  if (length > limits.max) bad(field, `${field} must be at most ${limits.max} characters`);
  return text;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** One account per address whatever its case or surrounding spaces. */
export function normalizeEmail(value: string, field = "email"): string {
  const email = value.normalize("NFC").trim().toLowerCase();
  if (email.length > 254) bad(field, `${field} must be at most 254 characters`);
  if (!EMAIL.test(email) || INVISIBLE_OR_CONTROL.test(email)) bad(field, `${field} is not an email address`);
  return email;
}

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

// The most used passwords of the public breach lists that are 8+ characters long.
const COMMON_PASSWORDS = new Set([
  "password",
  "password1",
  "password123",
  "12345678",
  "123456789",
  "1234567890",
  "qwertyuiop",
  "qwerty123",
  "iloveyou",
  "11111111",
  "00000000",
  "abc12345",
  "abcd1234",
  "sunshine",
  "princess",
  "football",
  "baseball",
  "welcome1",
  "letmein1",
  "trustno1",
  "superman",
  "starwars",
  "passw0rd",
  "1q2w3e4r",
  "1qaz2wsx",
  "zaq12wsx",
  "qwertyui",
  "asdfghjk",
  "monkey123",
  "dragon123",
  "master123",
]);

export function checkPassword(password: string, field = "password"): string {
  const length = [...password].length;
  if (length < PASSWORD_MIN) bad(field, `${field} must be at least ${PASSWORD_MIN} characters`);
  if (length > PASSWORD_MAX) bad(field, `${field} must be at most ${PASSWORD_MAX} characters`);
  if (COMMON_PASSWORDS.has(password.toLowerCase()) || /^(.)\1+$/u.test(password)) {
    bad(field, `${field} is too easy to guess`);
  }
  return password;
}

export const MINIMUM_AGE = 18;
const MAXIMUM_AGE = 120;

/** Whole years between a birth date and today (UTC). */
export function ageOn(birthDate: Date, today = new Date()): number {
  let age = today.getUTCFullYear() - birthDate.getUTCFullYear();
  const beforeBirthday =
    today.getUTCMonth() < birthDate.getUTCMonth() ||
    (today.getUTCMonth() === birthDate.getUTCMonth() && today.getUTCDate() < birthDate.getUTCDate());
  if (beforeBirthday) age -= 1;
  return age;
}

export function checkBirthDate(birthDate: Date, field = "birthDate"): Date {
  const age = ageOn(birthDate);
  if (age < MINIMUM_AGE) bad(field, `You must be at least ${MINIMUM_AGE} to use the app`);
  if (age > MAXIMUM_AGE) bad(field, `${field} is not a plausible birth date`);
  return birthDate;
}

export function checkIntRange(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    bad(field, `${field} must be a whole number from ${min} to ${max}`);
  return value;
}
