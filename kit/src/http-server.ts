import type http from "node:http";
import etag from "etag";
import fresh from "fresh";
import type { AddressInfo } from "node:net";
import { runReadinessChecks, type ReadinessCheck } from "./readiness";

/** One route's handler on a plain node:http server; a rejected promise is answered 500. */
export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** Starts `server` on host:port (0 picks a free port); resolves with the port and a host to show in URLs. */
export async function listen(
  server: http.Server,
  port: number,
  host: string,
): Promise<{ port: number; displayHost: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    displayHost: host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host,
  };
}

/** The path of a request URL without its query string. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

/**
 * Sends a whole answer with its length. A GET or HEAD answer carries a weak `ETag` and becomes a
 * bodiless 304 when the request's `If-None-Match` holds it; other methods' answers carry none.
 */
export function sendBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  contentType: string,
  body: string,
): void {
  res.statusCode = status;
  const bytes = Buffer.from(body, "utf8");
  if (req.method === "GET" || req.method === "HEAD") {
    const validator = etag(bytes, { weak: true });
    res.setHeader("etag", validator);
    if (((status >= 200 && status < 300) || status === 304) && fresh(req.headers, { etag: validator })) {
      res.statusCode = 304;
      res.removeHeader("content-type");
      res.removeHeader("content-length");
      res.end();
      return;
    }
  }
  res.setHeader(
    "content-type",
    /;\s*charset=/i.test(contentType) ? contentType : `${contentType}; charset=utf-8`,
  );
  res.setHeader("content-length", bytes.length);
  res.end(bytes);
}

/** Sends `value` as JSON (see `sendBody`). */
export function sendJson(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  value: unknown,
): void {
  sendBody(req, res, status, "application/json; charset=utf-8", JSON.stringify(value));
}

/** 404 for a path or method no route serves. */
export function sendNotFound(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader("x-content-type-options", "nosniff");
  sendBody(req, res, 404, "text/plain; charset=utf-8", `Cannot ${req.method ?? "GET"} ${pathOf(req.url)}`);
}

/**
 * Every process's probes: `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when
 * every check answers, 503 naming the failing ones, 503 while the process stops).
 */
export function probeRoutes(
  name: string,
  readiness: ReadinessCheck[],
  isStopping: () => boolean,
): Record<string, HttpHandler> {
  return {
    "/healthz": (req, res) => sendJson(req, res, 200, { status: "ok", service: name }),
    "/readyz": async (req, res) => {
      if (isStopping()) {
        sendJson(req, res, 503, { status: "stopping", service: name });
        return;
      }
      const report = await runReadinessChecks(readiness);
      sendJson(req, res, report.ready ? 200 : 503, {
        status: report.ready ? "ready" : "not ready",
        service: name,
        checks: report.checks,
      });
    },
  };
}

/**
 * A request listener serving `getRoutes` for GET and HEAD by exact path (a trailing `/` allowed),
 * `other` for what it returns true for, and 404 for the rest. A handler that throws is answered
 * 500 (and reported to `onError`) unless it already answered.
 */
export function routeRequests(options: {
  getRoutes: Record<string, HttpHandler>;
  other?: (req: http.IncomingMessage, res: http.ServerResponse, path: string) => boolean;
  onError: (error: unknown) => void;
}): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const routes = new Map(Object.entries(options.getRoutes));
  const fail = (res: http.ServerResponse, error: unknown) => {
    options.onError(error);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.statusCode = 500;
    res.setHeader("content-type", "text/plain; charset=utf-8");
    res.end("Internal Server Error");
  };
  return (req, res) => {
    const raw = pathOf(req.url);
    const path = raw.length > 1 && raw.endsWith("/") ? raw.slice(0, -1) : raw;
    if (options.other?.(req, res, path)) return;
    const handler = req.method === "GET" || req.method === "HEAD" ? routes.get(path) : undefined;
    if (!handler) {
      sendNotFound(req, res);
      return;
    }
    try {
      const done = handler(req, res);
      if (done) done.catch((error: unknown) => fail(res, error));
    } catch (error) {
      fail(res, error);
    }
  };
}
