/**
 * Loaded into a gateway process by bench/gateway-latency.ts `--timeline` (`node --import
 * bench/support/request-timeline.ts`): high-resolution marks of each HTTP request's steps, for a
 * process that serves one request at a time. Marks come from Node's diagnostics channels (request
 * received, response finished; undici's fetch created, written, answered), a wrapped ioredis
 * `sendCommand` (the admission's EVALSHA sent and answered), graphql-js's `getVariableValues` (the
 * gateway's executor starts), and a wrapped `ServerResponse`
 * (`x-request-id` set: the request's context is built; `end` called: the answer is written).
 * On SIGUSR2 it writes the requests marked since the previous SIGUSR2 to BENCH_TIMELINE_FILE
 * (JSON: an array of `{ step: ms since received }`) and starts over. Never imported by the services.
 */
import crypto from "node:crypto";
import diagnosticsChannel from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import Module from "node:module";

type Marks = Record<string, number>;

const file = process.env.BENCH_TIMELINE_FILE;
let requests: Marks[] = [];
let current: Marks | undefined;
let receivedAt = 0n;

const mark = (step: string): void => {
  if (current === undefined || step in current) return;
  current[step] = Number(process.hrtime.bigint() - receivedAt) / 1e6;
};

diagnosticsChannel.subscribe("http.server.request.start", (message) => {
  const { request } = message as { request: http.IncomingMessage };
  if (!(request.url ?? "").startsWith("/graphql")) return;
  receivedAt = process.hrtime.bigint();
  current = { received: 0 };
  requests.push(current);
  request.once("end", () => mark("bodyRead"));
});
diagnosticsChannel.subscribe("http.server.response.finish", () => mark("finished"));
diagnosticsChannel.subscribe("undici:request:create", () => mark("fetchCreated"));
diagnosticsChannel.subscribe("undici:request:bodySent", () => mark("fetchWritten"));
diagnosticsChannel.subscribe("undici:request:headers", () => mark("fetchHeaders"));
diagnosticsChannel.subscribe("undici:request:trailers", () => mark("fetchDone"));

const setHeader = http.ServerResponse.prototype.setHeader;
http.ServerResponse.prototype.setHeader = function (this: http.ServerResponse, name, value) {
  if (name === "x-request-id") mark("context");
  return setHeader.call(this, name, value);
} as typeof setHeader;
const end = http.ServerResponse.prototype.end;
http.ServerResponse.prototype.end = function (this: http.ServerResponse, ...args: unknown[]) {
  mark("answerEnd");
  return (end as (...a: unknown[]) => http.ServerResponse).apply(this, args);
} as typeof end;

// When bytes reach the kernel (a cork or an event-loop turn can hold them after `write`).
type WriteGeneric = (this: net.Socket, ...args: unknown[]) => unknown;
const redisPort = Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1").port || 6379);
const socketPrototype = net.Socket.prototype as unknown as { _writeGeneric: WriteGeneric };
const writeGeneric = socketPrototype._writeGeneric;
socketPrototype._writeGeneric = function (this: net.Socket, ...args: unknown[]) {
  if (this.remotePort === redisPort) mark("redisWrite");
  else if ((this as net.Socket & { server?: unknown }).server) mark("answerWrite");
  else mark("fetchWrite");
  return writeGeneric.apply(this, args);
};

// The gateway's revocation assertion is an HMAC, signed once the admission answered.
const createHmac = crypto.createHmac;
crypto.createHmac = function (...args: Parameters<typeof createHmac>) {
  mark("assertionSigned");
  return createHmac(...args);
} as typeof createHmac;

interface CommandLike {
  name: string;
  promise: Promise<unknown>;
}
type RedisPrototype = { sendCommand(command: CommandLike, ...rest: unknown[]): unknown; __timeline?: true };

/** Wraps ioredis's `sendCommand` (the copy the gateway requires, wherever it resolves from). */
function wrapRedis(exported: unknown): void {
  const candidates = [exported, (exported as { default?: unknown }).default];
  for (const candidate of candidates) {
    const prototype = (candidate as { prototype?: RedisPrototype } | undefined)?.prototype;
    if (!prototype || typeof prototype.sendCommand !== "function" || prototype.__timeline) continue;
    const send = prototype.sendCommand;
    prototype.__timeline = true;
    prototype.sendCommand = function (this: unknown, command: CommandLike, ...rest: unknown[]) {
      if (command.name === "evalsha" || command.name === "eval") {
        const owner = current;
        mark("admissionSent");
        command.promise.then(
          () => {
            if (owner === current) mark("admissionAnswered");
          },
          () => undefined,
        );
      }
      return send.call(this, command, ...rest);
    };
  }
}

/** The gateway's executor checks a query's variables first (gateway/src/query-executor.ts). */
function wrapVariableValues(exported: Record<string, unknown>): void {
  const original = exported.getVariableValues as ((...args: unknown[]) => unknown) & { __timeline?: true };
  if (typeof original !== "function" || original.__timeline) return;
  const wrapped = (...args: unknown[]) => {
    mark("executorStart");
    return original(...args);
  };
  wrapped.__timeline = true as const;
  exported.getVariableValues = wrapped;
}

const moduleRequire = Module.prototype.require;
Module.prototype.require = function (this: unknown, id: string) {
  const exported = moduleRequire.call(this as NodeJS.Module, id) as unknown;
  if (id === "ioredis") wrapRedis(exported);
  if (id === "graphql/execution/values") wrapVariableValues(exported as Record<string, unknown>);
  return exported;
} as typeof moduleRequire;

process.on("SIGUSR2", () => {
  if (file) writeFileSync(file, JSON.stringify(requests));
  requests = [];
  current = undefined;
});
