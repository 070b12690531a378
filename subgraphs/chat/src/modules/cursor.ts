import { appError, ErrorCode, requireUuid } from "@hv/kit";

/** A keyset position in a list ordered by (time, id): opaque to the app. */
export interface Cursor {
  t: string;
  id: string;
}

export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: at.toISOString(), id })).toString("base64url");
}

/** The cursor an `after` argument holds; BAD_USER_INPUT on `after` for anything this list did not hand out. */
export function decodeCursor(value: unknown): Cursor {
  const invalid = () =>
    appError(ErrorCode.BAD_USER_INPUT, "after is not a cursor from this list", { field: "after" });
  if (typeof value !== "string" || value.length > 200 || !/^[A-Za-z0-9_-]+$/.test(value)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  const cursor = parsed as Partial<Cursor>;
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    Object.keys(parsed).length !== 2 ||
    typeof cursor.t !== "string" ||
    Number.isNaN(Date.parse(cursor.t)) ||
    typeof cursor.id !== "string"
  ) {
    throw invalid();
  }
  return { t: cursor.t, id: requireUuid(cursor.id, "after") };
}
