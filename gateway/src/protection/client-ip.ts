import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";
import { unmapIpv4, type TrustProxy } from "@hv/kit";

/**
 * Express's `trust proxy` setting as a function, compiled the way Express compiles it (with
 * proxy-addr, the library Express itself uses), for requests Express does not see: WebSocket
 * upgrades.
 */
export function compileTrust(trust: TrustProxy): (address: string, hop: number) => boolean {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === "number") return (_address, hop) => hop < trust;
  return proxyaddr.compile(trust.split(",").map((entry) => entry.trim()));
}

/** The client's address of a raw HTTP request (a WebSocket upgrade) exactly as `req.ip` would be. */
export function clientIpResolver(trust: TrustProxy): (request: IncomingMessage) => string {
  const trusted = compileTrust(trust);
  return (request) => unmapIpv4(proxyaddr(request, trusted));
}
