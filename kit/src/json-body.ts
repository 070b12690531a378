import type http from "node:http";
import bodyParser from "body-parser";

/**
 * A request body read as JSON: `undefined` when the request has none or it is not
 * `application/json` (Apollo then answers what is missing), `{}` for an empty one.
 */
export type JsonBodyResult =
  { ok: true; body: unknown } | { ok: false; status: 413 | 400 | 415; reason: "too-large" | "unreadable" };

export type JsonBodyReader = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<JsonBodyResult>;

const UNREADABLE_400 = { ok: false, status: 400, reason: "unreadable" } as const;
const UNREADABLE_415 = { ok: false, status: 415, reason: "unreadable" } as const;
const TOO_LARGE = { ok: false, status: 413, reason: "too-large" } as const;

/** body-parser's error: an HTTP status, and `type` saying which check refused the body. */
function refusalOf(error: unknown): JsonBodyResult {
  const status = (error as { status?: unknown }).status;
  if (status === 413) return TOO_LARGE;
  if (status === 415) return UNREADABLE_415;
  return UNREADABLE_400;
}

/**
 * Reads `application/json` bodies with body-parser's `json()`: at most `limit` bytes once decoded
 * (gzip, deflate and br bodies are inflated), `utf-*` charsets only (else 415), and only an object
 * or an array is JSON here (strict; anything else is 400).
 */
export function jsonBodyReader(limit: number): JsonBodyReader {
  const parse = bodyParser.json({ limit, strict: true, inflate: true, type: "application/json" });
  return (req, res) =>
    new Promise((resolve) => {
      parse(req, res, (error?: unknown) => {
        if (error) resolve(refusalOf(error));
        else resolve({ ok: true, body: (req as http.IncomingMessage & { body?: unknown }).body });
      });
    });
}
