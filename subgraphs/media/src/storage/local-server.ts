import { createReadStream, createWriteStream } from "node:fs";
import { link, mkdir, rm, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "@hv/kit";
import parseRange from "range-parser";
import { checkSignature, FILES_PATH, type LocalStorage, type UrlClaims } from "./local";

/**
 * The public file endpoint of the local storage driver: `PUT /files/<key>?…` stores exactly the
 * signed number of bytes of the signed content type, once; `GET /files/<key>?…` serves a stored
 * file (`HEAD` too, and one `Range` per request, as video players on phones ask for). Every
 * request needs a valid, unexpired signature from the media subgraph. It listens on
 * its own port (MEDIA_FILES_PORT), apart from the subgraph, which only the gateway should reach.
 */
export interface RunningFileServer {
  port: number;
  /** `http://127.0.0.1:<port>` */
  localUrl: string;
  stop(): Promise<void>;
}

class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function refuse(status: number, message: string): never {
  throw new HttpRefusal(status, message);
}

function claimsOf(method: "PUT" | "GET", url: URL): { claims: UrlClaims; signature: string } {
  const key = url.pathname.slice(FILES_PATH.length);
  const contentType = url.searchParams.get("ct");
  const expiresText = url.searchParams.get("exp");
  const signature = url.searchParams.get("sig");
  const lengthText = url.searchParams.get("len");
  if (!key || contentType === null || expiresText === null || signature === null)
    refuse(403, "not a signed URL");
  if (!/^\d{1,12}$/.test(expiresText)) refuse(403, "malformed expiry");
  if (method === "PUT" ? lengthText === null || !/^\d{1,12}$/.test(lengthText) : lengthText !== null)
    refuse(403, "malformed size");
  return {
    claims: {
      method,
      key,
      contentType,
      byteSize: lengthText === null ? null : Number(lengthText),
      expires: Number(expiresText),
    },
    signature,
  };
}

/** Passes at most `limit` bytes; one more fails the stream (the upload is bigger than signed). */
function byteLimit(limit: number, counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counter.bytes += chunk.length;
      if (counter.bytes > limit)
        callback(new HttpRefusal(413, `the upload is bigger than the ${limit} bytes it was signed for`));
      else callback(null, chunk);
    },
  });
}

export interface FileServerOptions {
  storage: LocalStorage;
  host: string;
  port: number;
  logger: Logger;
  /**
   * Whether a signed PUT may still store `key` (asked before and after the bytes arrive); absent:
   * always. The media subgraph answers from the row: only while the item waits for its original.
   */
  acceptsUpload?: (key: string) => Promise<boolean>;
}

export async function startFileServer(options: FileServerOptions): Promise<RunningFileServer> {
  const { storage, logger } = options;
  const secret = storage.options.secret;

  async function verified(method: "PUT" | "GET", req: http.IncomingMessage) {
    const url = new URL(req.url ?? "/", "http://files.invalid");
    if (!url.pathname.startsWith(FILES_PATH)) refuse(404, "not found");
    const { claims, signature } = claimsOf(method, url);
    if (!checkSignature(claims, signature, secret)) refuse(403, "bad signature");
    if (claims.expires <= Math.floor(Date.now() / 1000)) refuse(403, "the URL has expired");
    let file: string;
    try {
      file = storage.pathOf(claims.key);
    } catch {
      refuse(403, "bad key");
    }
    return { claims, file };
  }

  async function put(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { claims, file } = await verified("PUT", req);
    const size = claims.byteSize ?? 0;
    if ((req.headers["content-type"] ?? "").trim().toLowerCase() !== claims.contentType.toLowerCase()) {
      refuse(403, `content-type must be ${claims.contentType}, as signed`);
    }
    const accepts = options.acceptsUpload ?? (async () => true);
    if (!(await accepts(claims.key))) refuse(409, "this upload URL no longer takes an upload");
    const declared = req.headers["content-length"];
    if (declared !== undefined) {
      const length = Number(declared);
      if (length > size) refuse(413, `the upload is bigger than the ${size} bytes it was signed for`);
      if (length < size) refuse(400, `the upload must be exactly ${size} bytes`);
    }
    await mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.partial`;
    const counter = { bytes: 0 };
    try {
      await pipeline(req, byteLimit(size, counter), createWriteStream(partial, { flags: "wx" }));
      if (counter.bytes !== size)
        refuse(400, `the upload must be exactly ${size} bytes; ${counter.bytes} arrived`);
      // link() refuses to replace: an upload URL stores its object once, and it never changes after.
      await link(partial, file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "EEXIST") refuse(409, "already uploaded");
        throw error;
      });
      // The item may have been deleted while the bytes streamed in: then they do not stay.
      if (!(await accepts(claims.key))) {
        await rm(file, { force: true });
        refuse(409, "this upload URL no longer takes an upload");
      }
    } finally {
      await rm(partial, { force: true });
    }
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ ok: true, byteSize: size }));
  }

  async function get(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { claims, file } = await verified("GET", req);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) refuse(404, "not found");
    const maxAge = Math.max(0, claims.expires - Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      "content-type": claims.contentType,
      "accept-ranges": "bytes",
      "cache-control": `private, max-age=${maxAge}`,
      "x-content-type-options": "nosniff",
      "last-modified": info.mtime.toUTCString(),
    };
    let start = 0;
    let end = info.size - 1;
    let status = 200;
    const rangeHeader = req.headers.range;
    if (rangeHeader !== undefined && info.size > 0) {
      const ranges = parseRange(info.size, rangeHeader, { combine: true });
      if (ranges === -1) {
        res.writeHead(416, { ...headers, "content-range": `bytes */${info.size}` }).end();
        return;
      }
      // Malformed (-2), another unit, or several ranges (no multipart here): the whole file.
      const first = ranges !== -2 && ranges.type === "bytes" && ranges.length === 1 ? ranges[0] : undefined;
      if (first) {
        ({ start, end } = first);
        status = 206;
        headers["content-range"] = `bytes ${start}-${end}/${info.size}`;
      }
    }
    headers["content-length"] = String(info.size === 0 ? 0 : end - start + 1);
    res.writeHead(status, headers);
    if (req.method === "HEAD" || info.size === 0) {
      res.end();
      return;
    }
    await pipeline(createReadStream(file, { start, end }), res);
  }

  const server = http.createServer((req, res) => {
    const handle = req.method === "PUT" ? put : req.method === "GET" || req.method === "HEAD" ? get : null;
    const work = handle ? handle(req, res) : Promise.reject(new HttpRefusal(405, "only PUT, GET and HEAD"));
    work.catch((error: unknown) => {
      const status = error instanceof HttpRefusal ? error.status : 500;
      if (status === 500) logger.error({ err: error, method: req.method }, "file endpoint failed");
      else
        logger.info({ status, reason: (error as Error).message, method: req.method }, "file request refused");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // The client may still be sending a body we refuse: answer, then close the connection.
      res
        .writeHead(status, { "content-type": "application/json", connection: "close" })
        .end(JSON.stringify({ error: status === 500 ? "internal error" : (error as Error).message }));
      req.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port }, "media file endpoint listening");
  return {
    port,
    localUrl: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
