import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";
import type { TrustProxy } from "./config";

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** An IPv4 client on a dual-stack socket (`::ffff:a.b.c.d`) as its plain IPv4 address; any other address as it is. */
export function unmapIpv4(ip: string): string {
  return IPV4_MAPPED.exec(ip)?.[1] ?? ip;
}

/** Addresses whose trust `compileTrust` remembers (a few proxies and clients; cleared when full). */
const MAX_REMEMBERED_ADDRESSES = 4096;

/**
 * TRUST_PROXY as a function of (address, hop), with the semantics of Express's `trust proxy`
 * setting (`true`, `false`, a hop count, or comma-separated addresses, CIDRs and proxy-addr's
 * names such as `loopback`), compiled by proxy-addr. A list's answer depends on the address
 * alone: it is remembered per address text.
 */
export function compileTrust(trust: TrustProxy): (address: string, hop: number) => boolean {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === "number") return (_address, hop) => hop < trust;
  const compiled = proxyaddr.compile(trust.split(",").map((entry) => entry.trim()));
  const remembered = new Map<string, boolean>();
  return (address, hop) => {
    let trusted = remembered.get(address);
    if (trusted === undefined) {
      trusted = compiled(address, hop);
      if (remembered.size >= MAX_REMEMBERED_ADDRESSES) remembered.clear();
      remembered.set(address, trusted);
    }
    return trusted;
  };
}

/**
 * The client's address of a request: the socket's peer, or the nearest `X-Forwarded-For` entry
 * added by a proxy TRUST_PROXY trusts; IPv4-mapped IPv6 unwrapped.
 */
export function clientIpResolver(trust: TrustProxy): (request: IncomingMessage) => string {
  const trusted = compileTrust(trust);
  return (request) => {
    // Without X-Forwarded-For there is nothing to walk: the peer is the client.
    if (request.headers["x-forwarded-for"] === undefined) {
      return unmapIpv4(request.socket.remoteAddress ?? "unknown");
    }
    return unmapIpv4(proxyaddr(request, trusted));
  };
}
