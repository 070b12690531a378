import type http from "node:http";

/** An async request listener for `http.createServer`: a rejection answers 500 instead of going unhandled. */
export function handled(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
): http.RequestListener {
  return (req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.statusCode = 500;
      res.end(String(error));
    });
  };
}
