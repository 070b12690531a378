import { appError, ErrorCode } from "./errors";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Every entity id in this system is a UUID; anything else can never match a row. */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** For arguments: a malformed id is the caller's mistake, reported against the argument. */
export function requireUuid(value: unknown, field: string): string {
  if (!isUuid(value)) throw appError(ErrorCode.BAD_USER_INPUT, `${field} must be a UUID`, { field });
  return value.toLowerCase();
}

/**
 * A new id for rows inserted at a high rate (messages, outbox events): a UUIDv7, whose first 48 bits
 * are the Unix time in ms, so each insert appends to its primary key's rightmost leaf (docs/chat.md).
 * Only for ids whose creation time is no secret: the time can be read back from the id.
 */
export { v7 as timeOrderedUuid } from "uuid";
