import { STATUS_CODES } from "node:http";
import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
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

/** What undici's dispatch handler is handed for one exchange (its abort, before the request is sent). */
type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler["onRequestStart"]>>[0];
type ResponseHeaders = Parameters<NonNullable<Dispatcher.DispatchHandler["onResponseStart"]>>[2];

/**
 * One exchange's answer collected in memory by undici's dispatch handler: status, headers and body
 * chunks, without the body stream `request` makes per fetch. `timeOut` aborts it (RequestAbortedError).
 */
class BufferingHandler implements Dispatcher.DispatchHandler {
  private controller: DispatchController | undefined;
  private timedOut = false;
  private status = 0;
  private headers: ResponseHeaders = {};
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly url: string,
    private readonly resolve: (response: BufferedResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  timeOut(): void {
    this.timedOut = true;
    this.controller?.abort(new undiciErrors.RequestAbortedError());
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.timedOut) controller.abort(new undiciErrors.RequestAbortedError());
  }

  onResponseStart(_controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.resolve(new BufferedResponse(this.url, this.status, new FlatHeaders(this.headers), body));
  }

  onResponseError(_controller: DispatchController, error: Error): void {
    this.reject(error);
  }
}

/** A subgraph URL's origin and path, parsed once per URL (a gateway fetches a handful). */
const targets = new Map<string, { origin: string; path: string }>();
function targetOf(url: string): { origin: string; path: string } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    targets.set(url, target);
  }
  return target;
}

/**
 * The gateway's fetches to its subgraphs: undici's dispatcher on a keep-alive pool of its own, the
 * answer collected whole in memory, with a deadline over the whole exchange (headers and body):
 * past `timeoutMs` the request is aborted and that part of the answer is UPSTREAM_TIMEOUT
 * (GATEWAY_SUBGRAPH_TIMEOUT_MS).
 *
 * Not Node's global `fetch`: it is the same undici underneath, but its WHATWG layer (streams,
 * AbortSignal, Request/Response objects) cost about 1 ms of CPU per subgraph fetch here, three
 * fetches for a page of nearby people (bench/nearby-gateway.ts); nor undici's `request`, whose
 * body stream the gateway only ever reads whole. OpenTelemetry's undici instrumentation sees these
 * requests too (the same diagnostics channels), so traces still continue into the subgraphs.
 */
export function createSubgraphFetcher(timeoutMs: number): SubgraphFetcher {
  const dispatcher = new Agent({
    keepAliveTimeout: UPSTREAM_IDLE_MS,
    keepAliveMaxTimeout: UPSTREAM_IDLE_MS,
    connections: 64,
  });
  const fetch = async (url: string, init?: FetcherInit): Promise<BufferedResponse> => {
    const { origin, path } = targetOf(url);
    let handler: BufferingHandler | undefined;
    const answered = new Promise<BufferedResponse>((resolve, reject) => {
      handler = new BufferingHandler(url, resolve, reject);
    });
    const timer = setTimeout(() => handler!.timeOut(), timeoutMs);
    try {
      dispatcher.dispatch(
        {
          origin,
          path,
          method: (init?.method ?? "GET") as "GET" | "POST",
          headers: (init?.headers ?? {}) as Record<string, string>,
          body: (init?.body ?? null) as string | null,
        },
        handler!,
      );
      return await answered;
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
