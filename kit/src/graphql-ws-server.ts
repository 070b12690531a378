import type http from "node:http";
import {
  CloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  handleProtocols,
  makeServer,
  MessageType,
  type ServerOptions,
} from "graphql-ws";
import type { WebSocket, WebSocketServer } from "ws";

/**
 * What a connection's graphql-ws context carries: its socket and what was read from the upgrade
 * request. The request itself is not kept (its headers, buffers and stream state were about a
 * kilobyte per open connection).
 */
export interface SocketExtra<Upgrade> {
  readonly socket: WebSocket;
  readonly upgrade: Upgrade;
}

/** Bytes a socket may hold unwritten before `send` waits for its frame to reach the kernel. */
export const SEND_QUEUE_LIMIT = 16 * 1024;

/** graphql-ws's default wait for `connection_init`. */
const CONNECTION_INIT_WAIT_MS = 3_000;

/** Closes a socket that did not send `connection_init` in time (graphql-ws's own close). */
function closeUninitialised(socket: WebSocket): void {
  socket.close(CloseCode.ConnectionInitialisationTimeout, "Connection initialisation timeout");
}

/** The closed code of an unexpected failure of a socket or of handling a message. */
const INTERNAL = CloseCode.InternalServerError;

/** Distinct subscribe texts kept by `sharedTexts`; past it the oldest is forgotten. */
export const SHARED_TEXTS_SIZE = 200;
/** Longer texts are not kept (each subscriber holds its own). */
export const SHARED_TEXT_MAX_LENGTH = 16_384;

/**
 * One copy of each query text that many subscribe messages carry (the apps' few operations): a
 * message's text is swapped for the kept copy, so its own copy is freed. Bounded: at most
 * `SHARED_TEXTS_SIZE` texts of at most 16 KiB, the oldest forgotten first.
 */
export class SharedTexts {
  private readonly texts = new Map<string, string>();

  get size(): number {
    return this.texts.size;
  }

  has(text: string): boolean {
    return this.texts.has(text);
  }

  /** The kept copy of `text` (kept now if it is new and not too long). */
  share(text: string): string {
    const known = this.texts.get(text);
    if (known !== undefined) return known;
    if (text.length > SHARED_TEXT_MAX_LENGTH) return text;
    if (this.texts.size >= SHARED_TEXTS_SIZE) this.texts.delete(this.texts.keys().next().value as string);
    this.texts.set(text, text);
    return text;
  }
}

/**
 * A message as graphql-ws will keep it: parsed here, because graphql-ws's handler holds what it is
 * given for as long as the operation runs (the raw text, token and query included); a subscribe's
 * query is the shared copy. Text that does not parse is passed on as it is, for graphql-ws to refuse.
 */
function messageOf(data: Buffer, texts: SharedTexts): unknown {
  const text = data.toString();
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return text;
  }
  const payload = (message as { type?: unknown; payload?: unknown } | null)?.payload;
  if (
    (message as { type?: unknown }).type === MessageType.Subscribe &&
    typeof payload === "object" &&
    payload !== null &&
    typeof (payload as { query?: unknown }).query === "string"
  ) {
    (payload as { query: string }).query = texts.share((payload as { query: string }).query);
  }
  return message;
}

/**
 * graphql-ws's view of one `ws` socket: a class, so `send` and `close` are shared methods rather
 * than closures made per socket.
 */
class WsTransport {
  readonly protocol: string;
  /** Closes the socket unless `connection_init` comes first; dropped once it has come. */
  initWait: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly texts: SharedTexts,
    private readonly internal: (socket: WebSocket, error: unknown) => void,
  ) {
    this.protocol = socket.protocol;
  }

  /**
   * Resolved at once while the socket queues less than `SEND_QUEUE_LIMIT` bytes (a corked socket,
   * or the kernel took the frame), else once the frame is handed to the kernel: graphql-ws sends a
   * subscription's next result only then, so a client that stops reading fills the kernel's buffer
   * and at most that much of our memory.
   */
  send(data: string): Promise<void> {
    const socket = this.socket;
    return new Promise<void>((resolve, reject) => {
      if (socket.readyState !== socket.OPEN) return resolve();
      socket.send(data, (error) => (error ? reject(error) : resolve()));
      if (socket.bufferedAmount < SEND_QUEUE_LIMIT) resolve();
    });
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handle: (data: string) => Promise<void>): void {
    const { socket, texts, internal } = this;
    socket.on("message", (data: Buffer) => {
      const message = messageOf(data, texts);
      if (
        this.initWait !== undefined &&
        (message as { type?: unknown } | null)?.type === MessageType.ConnectionInit
      )
        this.stopInitWait();
      // graphql-ws parses only strings and takes an already parsed message as it is.
      handle(message as string).catch((error: unknown) => internal(socket, error));
    });
  }

  stopInitWait(): void {
    clearTimeout(this.initWait);
    this.initWait = undefined;
  }
}

/**
 * graphql-ws's protocol (`makeServer`) on `ws` sockets: `graphql-ws/use/ws` without its own
 * keep-alive (the caller keeps sockets alive), without holding the upgrade request, of which
 * `readUpgrade` keeps what the hooks need, without holding each message's raw text, and with its
 * `connectionInitWaitTimeout` timer dropped once `connection_init` has come (graphql-ws keeps it
 * for the connection's life). Returns the function that closes every socket with 1001 and stops the
 * server.
 */
export function serveGraphqlWs<Upgrade>(
  wss: WebSocketServer,
  options: ServerOptions<Record<string, unknown>, SocketExtra<Upgrade>>,
  readUpgrade: (request: http.IncomingMessage) => Upgrade,
  onInternalError: (error: unknown) => void,
): () => Promise<void> {
  const initWaitMs = options.connectionInitWaitTimeout ?? CONNECTION_INIT_WAIT_MS;
  const server = makeServer({ ...options, connectionInitWaitTimeout: 0 });
  const texts = new SharedTexts();
  wss.options.handleProtocols = handleProtocols;
  wss.once("error", (error) => {
    onInternalError(error);
    for (const client of wss.clients) client.close(INTERNAL, "Internal server error");
  });
  const internal = (socket: WebSocket, error: unknown) => {
    onInternalError(error);
    socket.close(INTERNAL, "Internal server error");
  };
  // Shared listener (`this` is the socket); listeners here use `on`, not `once` (docs/realtime-measurements.md, round 10).
  function onSocketError(this: WebSocket, error: Error): void {
    internal(this, error);
  }
  wss.on("connection", (socket: WebSocket, request: http.IncomingMessage) => {
    socket.on("error", onSocketError);
    const transport = new WsTransport(socket, texts, internal);
    if (initWaitMs > 0 && Number.isFinite(initWaitMs) && socket.protocol === GRAPHQL_TRANSPORT_WS_PROTOCOL)
      transport.initWait = setTimeout(closeUninitialised, initWaitMs, socket);
    const closed = server.opened(transport, { socket, upgrade: readUpgrade(request) });
    socket.on("close", (code: number, reason: Buffer) => {
      transport.stopInitWait();
      closed(code, String(reason)).catch(onInternalError);
    });
  });
  return async () => {
    for (const client of wss.clients) client.close(1001, "Going away");
    wss.removeAllListeners();
    await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
  };
}
