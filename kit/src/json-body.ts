import type http from "node:http";
import type { Readable } from "node:stream";
import zlib from "node:zlib";

/**
 * A request body read as JSON: `undefined` when the request has none or it is not
 * `application/json` (Apollo then answers what is missing), `{}` for an empty one.
 */
export type JsonBodyResult =
  { ok: true; body: unknown } | { ok: false; status: 413 | 400 | 415; reason: "too-large" | "unreadable" };

const UNREADABLE_400 = { ok: false, status: 400, reason: "unreadable" } as const;
const UNREADABLE_415 = { ok: false, status: 415, reason: "unreadable" } as const;
const TOO_LARGE = { ok: false, status: 413, reason: "too-large" } as const;

function hasBody(req: http.IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || req.headers["content-length"] !== undefined;
}

/** `application/json` (any case, any parameters) and its `charset` parameter, lower-cased. */
function jsonMediaType(contentType: string | undefined): { json: boolean; charset: string | undefined } {
  if (contentType === undefined) return { json: false, charset: undefined };
  const [type = "", ...parameters] = contentType.split(";");
  if (type.trim().toLowerCase() !== "application/json") return { json: false, charset: undefined };
  for (const parameter of parameters) {
    const equals = parameter.indexOf("=");
    if (equals > 0 && parameter.slice(0, equals).trim().toLowerCase() === "charset") {
      return {
        json: true,
        charset: parameter
          .slice(equals + 1)
          .trim()
          .replace(/^"|"$/g, "")
          .toLowerCase(),
      };
    }
  }
  return { json: true, charset: undefined };
}

function decoded(req: http.IncomingMessage): Readable | undefined {
  const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
  switch (encoding) {
    case "identity":
      return req;
    case "gzip":
    case "x-gzip":
      return req.pipe(zlib.createGunzip());
    case "deflate":
      return req.pipe(zlib.createInflate());
    case "br":
      return req.pipe(zlib.createBrotliDecompress());
    default:
      return undefined;
  }
}

/** Reads the rest of `req` and throws it away (the connection can then serve the next request). */
function drain(req: http.IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    req.once("end", resolve);
    req.once("close", resolve);
    req.resume();
  });
}

/** The decoded bytes, or why not; the request is read to its end either way. */
function collect(
  req: http.IncomingMessage,
  stream: Readable,
  limit: number,
): Promise<Buffer | "too-large" | "failed"> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (outcome: "too-large" | "failed") => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      if (stream !== req) {
        req.unpipe();
        stream.destroy();
      }
      void drain(req).then(() => resolve(outcome));
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) finish("too-large");
      else chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length));
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("error", () => finish("failed"));
    // The client went away before sending the whole body.
    req.once("close", () => {
      if (!req.complete) resolve("failed");
    });
  });
}

const FIRST_CHARACTER = /^[ \t\n\r]*(.)/s;

/**
 * The JSON body of `req`, at most `limit` bytes once decoded (gzip, deflate and br bodies are
 * inflated), `utf-*` charsets only. Only an object or an array is JSON here (as Express's strict
 * parser); anything else is unreadable (400).
 */
export async function readJsonBody(req: http.IncomingMessage, limit: number): Promise<JsonBodyResult> {
  if (!hasBody(req)) return { ok: true, body: undefined };
  const { json, charset } = jsonMediaType(req.headers["content-type"]);
  if (!json) return { ok: true, body: undefined };
  if (charset !== undefined && !charset.startsWith("utf-")) {
    await drain(req);
    return UNREADABLE_415;
  }
  const stream = decoded(req);
  if (!stream) {
    await drain(req);
    return UNREADABLE_415;
  }
  const declared = Number(req.headers["content-length"]);
  if (stream === req && declared > limit) {
    await drain(req);
    return TOO_LARGE;
  }
  const read = await collect(req, stream, limit);
  if (read === "too-large") return TOO_LARGE;
  if (read === "failed") return UNREADABLE_400;
  const bytes = read;
  let text: string;
  if (charset === undefined || charset === "utf-8" || charset === "utf8") {
    text = bytes.toString("utf8");
  } else {
    try {
      text = new TextDecoder(charset).decode(bytes);
    } catch {
      return UNREADABLE_415;
    }
  }
  if (text.length === 0) return { ok: true, body: {} };
  const first = FIRST_CHARACTER.exec(text)?.[1];
  if (first !== "{" && first !== "[") return UNREADABLE_400;
  try {
    return { ok: true, body: JSON.parse(text) as unknown };
  } catch {
    return UNREADABLE_400;
  }
}
