import { appError, ErrorCode, requireUuid } from "@hv/kit";

const bad = (field: string, message: string) => appError(ErrorCode.BAD_USER_INPUT, message, { field });

/** Control characters other than tab and newline (and NUL above all) are refused. */
// eslint-disable-next-line no-control-regex -- matching control characters is what this pattern is for
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CLIENT_MESSAGE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Message text: at most `max` code points, not blank, no control characters. */
/** Characters that show nothing: a text of only these (and spaces) is blank. */
const INVISIBLE = /[\p{Cf}\u115F\u1160\u3164\uFFA0]/gu;

export function messageText(value: unknown, field: string, max: number): string {
  if (typeof value !== "string") throw bad(field, `${field} must be a string`);
  if (value.replace(INVISIBLE, "").trim() === "") throw bad(field, `${field} must not be blank`);
  if (CONTROL.test(value)) throw bad(field, `${field} must not contain control characters`);
  if ([...value].length > max) throw bad(field, `${field} must be at most ${max} characters`);
  if (LONE_SURROGATE.test(value)) throw bad(field, `${field} must be well-formed Unicode`);
  return value;
}

export function clientMessageId(value: unknown, field: string): string {
  if (typeof value !== "string" || !CLIENT_MESSAGE_ID.test(value)) {
    throw bad(
      field,
      `${field} must be 1-64 of A-Z a-z 0-9 . _ : - (e.g. a UUID the app generates per message)`,
    );
  }
  return value;
}

export function uuidList(value: unknown, field: string, max: number, min = 0): string[] {
  if (!Array.isArray(value)) throw bad(field, `${field} must be a list of ids`);
  if (value.length > max) throw bad(field, `${field} takes at most ${max} ids`);
  if (value.length < min) throw bad(field, `${field} needs at least ${min} id${min === 1 ? "" : "s"}`);
  const ids = value.map((entry, index) => requireUuid(entry, `${field}[${index}]`));
  if (new Set(ids).size !== ids.length) throw bad(field, `${field} repeats an id`);
  return ids;
}

export function seqValue(value: unknown, field: string, min = 0): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw bad(field, `${field} must be an integer of at least ${min}`);
  }
  return value;
}

export function pageSize(value: unknown, field: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw bad(field, `${field} must be 1 to ${max}`);
  }
  return value;
}

/** One emoji (or a short emoji sequence): 1-16 UTF-16 units, no letters, digits, spaces or controls. */
export function emoji(value: unknown, field: string): string {
  if (
    typeof value !== "string" ||
    value.length === 0 ||
    value.length > 16 ||
    !/\p{Extended_Pictographic}/u.test(value) ||
    /[\p{L}\p{N}\s\p{Cc}]/u.test(value)
  ) {
    throw bad(field, `${field} must be one emoji`);
  }
  return value;
}

export function groupTitle(value: unknown, field: string): string {
  if (typeof value !== "string") throw bad(field, `${field} must be a string`);
  const title = value.trim();
  if (title === "") throw bad(field, `${field} must not be blank`);
  if (CONTROL.test(title) || /[\n\t]/.test(title))
    throw bad(field, `${field} must be one line without control characters`);
  if ([...title].length > 100) throw bad(field, `${field} must be at most 100 characters`);
  return title;
}

export function reportNote(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw bad(field, `${field} must be a string`);
  if (CONTROL.test(value)) throw bad(field, `${field} must not contain control characters`);
  if ([...value].length > 1000) throw bad(field, `${field} must be at most 1000 characters`);
  return value.trim() === "" ? null : value;
}
