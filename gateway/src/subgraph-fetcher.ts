import { EventEmitter } from "node:events";
import { STATUS_CODES } from "node:http";
import { Agent, errors as undiciErrors, request } from "undici";
import { appError, ErrorCode } from "@hv/kit";
import type { RemoteGraphQLDataSource } from "@apollo/gateway";

type Fetcher = NonNullable<RemoteGraphQLDataSource["fetcher"]>;
type FetcherResponse = Awaited<ReturnType<Fetcher>>;
type FetcherInit = Parameters<Fetcher>[1];
type FetcherHeaders = FetcherResponse["headers"];

/**
 * The fetch API's `Headers` (what Apollo's data sources read and write: get, set, append, has,
 * delete, iteration) over a plain record of lower-cased names, as undici's `request` hands response
 * headers over; repeated values read joined with ", ". No validation of names or values: they come
 * from the gateway itself or from a subgraph's parsed response.
 */
export class FlatHeaders implements FetcherHeaders {
  constructor(private readonly record: Record<string, string | string[] | undefined> = {}) {}

  get(name: string): string | null {
    const value = this.record[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : value;
  }

  has(name: string): boolean {
    return this.record[name.toLowerCase()] !== undefined;
  }

  set(name: string, value: string): void {
    this.record[name.toLowerCase()] = value;
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const previous = this.record[key];
    this.record[key] =
      previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }

  delete(name: string): void {
    delete this.record[name.toLowerCase()];
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.record).sort()) {
      const value = this.get(name);
      if (value !== null) yield [name, value];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Name → value (repeated values joined), for a request's `headers`. */
  toRecord(): Record<string, string> {
    const flat: Record<string, string> = {};
    for (const name in this.record) {
      const value = this.get(name);
      if (value !== null) flat[name] = value;
    }
    return flat;
  }

  clone(): FlatHeaders {
    const copy: Record<string, string | string[] | undefined> = {};
    for (const name in this.record) {
      const value = this.record[name];
      copy[name] = Array.isArray(value) ? [...value] : value;
    }
    return new FlatHeaders(copy);
  }
}

/** A subgraph's whole answer, read into memory: what RemoteGraphQLDataSource reads of a fetch Response. */
class BufferedResponse implements FetcherResponse {
  readonly redirected = false;
  readonly ok: boolean;
  readonly statusText: string;
  bodyUsed = false;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly headers: FlatHeaders,
    private readonly body: Buffer,
  ) {
    this.ok = status >= 200 && status < 300;
    this.statusText = STATUS_CODES[status] ?? "";
  }

  async text(): Promise<string> {
    this.bodyUsed = true;
    return this.body.toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    this.bodyUsed = true;
    const copy = new ArrayBuffer(this.body.byteLength);
    new Uint8Array(copy).set(this.body);
    return copy;
  }

  clone(): BufferedResponse {
    return new BufferedResponse(this.url, this.status, this.headers.clone(), this.body);
  }
}

export interface SubgraphFetcher {
  fetch: Fetcher;
  /** Closes the kept-alive connections (on stop). */
  close(): Promise<void>;
}

/** Longest a pooled subgraph connection stays idle: under the subgraphs' SERVICE_KEEP_ALIVE_MS. */
export const UPSTREAM_IDLE_MS = 30_000;

/**
 * The gateway's fetches to its subgraphs: undici's `request` on a keep-alive pool of its own,
 * with a deadline over the whole exchange (headers and body): past `timeoutMs` the request is
 * aborted and that part of the answer is UPSTREAM_TIMEOUT (GATEWAY_SUBGRAPH_TIMEOUT_MS).
 *
 * Not Node's global `fetch`: it is the same undici underneath, but its WHATWG layer (streams,
 * AbortSignal, Request/Response objects) cost about 1 ms of CPU per subgraph fetch here, three
 * fetches for a page of nearby people (bench/nearby-gateway.ts). OpenTelemetry's undici
 * instrumentation sees these requests too (the same diagnostics channels), so traces still
 * continue into the subgraphs.
 */
export function createSubgraphFetcher(timeoutMs: number): SubgraphFetcher {
  const dispatcher = new Agent({
    keepAliveTimeout: UPSTREAM_IDLE_MS,
    keepAliveMaxTimeout: UPSTREAM_IDLE_MS,
    connections: 64,
  });
  const fetch = async (url: string, init?: FetcherInit): Promise<BufferedResponse> => {
    // An EventEmitter as the signal: undici accepts one, and it is far cheaper than an AbortSignal.
    const abort = new EventEmitter();
    const timer = setTimeout(() => abort.emit("abort"), timeoutMs);
    try {
      const response = await request(url, {
        method: (init?.method ?? "GET") as "GET" | "POST",
        headers: init?.headers ?? {},
        body: init?.body ?? null,
        dispatcher,
        signal: abort,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      return new BufferedResponse(url, response.statusCode, new FlatHeaders(response.headers), body);
    } catch (error) {
      if (error instanceof undiciErrors.RequestAbortedError) {
        throw appError(
          ErrorCode.UPSTREAM_TIMEOUT,
          "A service behind the gateway did not answer in time; try again later",
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  return { fetch: fetch as unknown as Fetcher, close: () => dispatcher.close() };
}
