import http from "node:http";
import zlib from "node:zlib";
import { buildSchema, GraphQLError, type GraphQLSchema } from "graphql";
import { silentLogger } from "./logger";
import {
  startService,
  type AdmissionOutcome,
  type GraphQLHttpRequest,
  type RequestContextBase,
  type RunningService,
} from "./service";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: {
    data?: Record<string, unknown>;
    errors?: Array<{ message: string; extensions?: { code?: string } }>;
  };
}

/** One raw request (chunked when `chunked`), on a keep-alive agent so reuse of the connection shows. */
function request(
  url: string,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    chunked?: boolean;
    agent?: http.Agent;
  } = {},
): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: options.method ?? "POST",
        path: options.path ?? "/graphql",
        headers: options.headers ?? {},
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: Answer["body"] = {};
          try {
            body = JSON.parse(text) as Answer["body"];
          } catch {
            // not JSON: the test reads `text`
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on("error", reject);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    if (body && options.chunked) {
      req.write(body.subarray(0, 5));
      req.end(body.subarray(5));
    } else {
      req.end(body);
    }
  });
}

const JSON_TYPE = { "content-type": "application/json" };
const ECHO = JSON.stringify({ query: '{ echo(text: "hi") }' });

function echoSchema(): GraphQLSchema {
  const schema = buildSchema("type Query { echo(text: String): String }");
  const echo = schema.getQueryType()?.getFields().echo;
  if (echo) echo.resolve = (_source, args: { text?: string }) => args.text ?? null;
  return schema;
}

const TOO_MANY = {
  status: 429,
  errors: [{ message: "Too many", extensions: { code: "RATE_LIMITED" } }],
  headers: { "retry-after": "7" },
};

describe("startService's HTTP front", () => {
  let service: RunningService;
  let trusting: RunningService;
  const seenByHook: GraphQLHttpRequest[] = [];
  /** Bodies `afterBody` was given (undefined: unreadable). */
  const seenAfterBody: unknown[] = [];
  /** Requests whose pending admission found the token revoked: `authenticate` refuses them. */
  const revoked = new WeakSet<http.IncomingMessage>();

  const start = (trustProxy: boolean | string, name: string) =>
    startService<RequestContextBase>({
      name,
      logger: silentLogger(name),
      host: "127.0.0.1",
      port: 0,
      isProduction: false,
      graphql: { schema: echoSchema() },
      trustProxy,
      maxBodyBytes: 1024,
      readiness: [],
      authenticate: async (header, req) => {
        if (header === "Bearer bad" || revoked.has(req)) {
          throw new GraphQLError("The access token is not valid", {
            extensions: { code: "UNAUTHENTICATED", reason: "invalid" },
          });
        }
        return null;
      },
      beforeBody: async (req) => {
        const after = req.headers["x-after-body"];
        if (after !== undefined) {
          return {
            afterBody: async (body) => {
              seenAfterBody.push(body);
              if (after === "admit") return undefined;
              return after === "pending" ? { admission: Promise.resolve(TOO_MANY) } : TOO_MANY;
            },
          };
        }
        const pending = req.headers["x-pending"];
        if (pending !== undefined) {
          // The request runs at once; the verdict comes 50 ms later.
          const verdict = new Promise<AdmissionOutcome>((resolve) =>
            setTimeout(() => {
              if (pending === "again") revoked.add(req);
              resolve(pending === "admit" ? "admitted" : pending === "again" ? "again" : TOO_MANY);
            }, 50),
          );
          return { admission: verdict };
        }
        return req.headers["x-refuse"] === undefined ? undefined : TOO_MANY;
      },
      beforeGraphQL: (request) => {
        seenByHook.push(request);
        return undefined;
      },
      getRoutes: { "/extra": (_req, res) => void res.end("extra") },
      context: async (base) => base,
    });

  beforeAll(async () => {
    service = await start(false, "front");
    trusting = await start("loopback", "front-trusting");
  });
  afterAll(async () => {
    await service.stop();
    await trusting.stop();
  });

  it("should answer a POST and a GET query, with CORS, a request id, and an ETag on GET only", async () => {
    const post = await request(service.url, { headers: JSON_TYPE, body: ECHO });
    expect({ status: post.status, echo: post.body.data?.echo, etag: post.headers.etag }).toEqual({
      status: 200,
      echo: "hi",
      etag: undefined,
    });
    expect(post.headers["access-control-allow-origin"]).toBe("*");
    expect(post.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await request(service.url, {
      headers: { ...JSON_TYPE, "x-request-id": "req-12345678" },
      body: ECHO,
    });
    expect(kept.headers["x-request-id"]).toBe("req-12345678");

    const path = `/graphql?query=${encodeURIComponent('{ echo(text: "get") }')}`;
    const get = await request(service.url, {
      method: "GET",
      path,
      headers: { "apollo-require-preflight": "1" },
    });
    expect({ status: get.status, echo: get.body.data?.echo }).toEqual({ status: 200, echo: "get" });
    expect(get.headers.etag).toMatch(/^W\/"[0-9a-f]+-[A-Za-z0-9+/]{27}"$/);
    const again = await request(service.url, {
      method: "GET",
      path,
      headers: { "apollo-require-preflight": "1", "if-none-match": get.headers.etag ?? "" },
    });
    expect({ status: again.status, text: again.text }).toEqual({ status: 304, text: "" });
    expect(seenByHook.some((seen) => seen.method === "GET" && seen.search.startsWith("?query="))).toBe(true);
  });

  it("should answer a body that is not JSON, too large or in an unknown charset with a GraphQL-shaped error", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const cases = {
        malformed: await request(service.url, { headers: JSON_TYPE, body: "{ nope", agent }),
        scalar: await request(service.url, { headers: JSON_TYPE, body: '"text"', agent }),
        declaredTooLarge: await request(service.url, {
          headers: JSON_TYPE,
          body: JSON.stringify({ query: "x".repeat(2000) }),
          agent,
        }),
        streamedTooLarge: await request(service.url, {
          headers: JSON_TYPE,
          body: JSON.stringify({ query: "x".repeat(2000) }),
          chunked: true,
          agent,
        }),
        latin1: await request(service.url, {
          headers: { "content-type": "application/json; charset=latin1" },
          body: ECHO,
          agent,
        }),
      };
      expect(
        Object.fromEntries(
          Object.entries(cases).map(([name, answer]) => [
            name,
            { status: answer.status, code: answer.body.errors?.[0]?.extensions?.code },
          ]),
        ),
      ).toEqual({
        malformed: { status: 400, code: "BAD_REQUEST" },
        scalar: { status: 400, code: "BAD_REQUEST" },
        declaredTooLarge: { status: 413, code: "PAYLOAD_TOO_LARGE" },
        streamedTooLarge: { status: 413, code: "PAYLOAD_TOO_LARGE" },
        latin1: { status: 415, code: "BAD_REQUEST" },
      });
      // The connection survives every refusal: the next request on it is answered.
      const after = await request(service.url, { headers: JSON_TYPE, body: ECHO, agent });
      expect(after.body.data?.echo).toBe("hi");
    } finally {
      agent.destroy();
    }
  });

  it("should inflate a gzip body and count the limit on what it inflates to", async () => {
    const small = await request(service.url, {
      headers: { ...JSON_TYPE, "content-encoding": "gzip" },
      body: zlib.gzipSync(ECHO),
    });
    expect(small.body.data?.echo).toBe("hi");
    const bomb = await request(service.url, {
      headers: { ...JSON_TYPE, "content-encoding": "gzip" },
      body: zlib.gzipSync(JSON.stringify({ query: " ".repeat(100_000) })),
    });
    expect({ status: bomb.status, code: bomb.body.errors?.[0]?.extensions?.code }).toEqual({
      status: 413,
      code: "PAYLOAD_TOO_LARGE",
    });
  });

  it("should answer a CORS preflight, and send a hook's refusal and a refused token as they are", async () => {
    const preflight = await request(service.url, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect({
      status: preflight.status,
      origin: preflight.headers["access-control-allow-origin"],
      headers: preflight.headers["access-control-allow-headers"],
      methods: preflight.headers["access-control-allow-methods"],
    }).toEqual({
      status: 204,
      origin: "*",
      headers: "content-type,authorization",
      methods: "GET,HEAD,PUT,PATCH,POST,DELETE",
    });
    const refused = await request(service.url, { headers: { ...JSON_TYPE, "x-refuse": "1" }, body: ECHO });
    expect({
      status: refused.status,
      retryAfter: refused.headers["retry-after"],
      code: refused.body.errors?.[0]?.extensions?.code,
    }).toEqual({ status: 429, retryAfter: "7", code: "RATE_LIMITED" });
    const badToken = await request(service.url, {
      headers: { ...JSON_TYPE, authorization: "Bearer bad" },
      body: ECHO,
    });
    expect({
      status: badToken.status,
      challenge: badToken.headers["www-authenticate"],
      code: badToken.body.errors?.[0]?.extensions?.code,
    }).toEqual({ status: 401, challenge: 'Bearer error="invalid_token"', code: "UNAUTHENTICATED" });
  });

  it("should hold the answer of a request run before its admission, and send the admission's verdict", async () => {
    const ask = (pending: string, body = ECHO) =>
      request(service.url, { headers: { ...JSON_TYPE, "x-pending": pending }, body });
    const admitted = await ask("admit");
    const refused = await ask("refuse");
    const refusedBadBody = await ask("refuse", "{not json");
    const again = await ask("again");
    expect({
      admitted: [admitted.status, admitted.body.data?.echo],
      refused: [refused.status, refused.body.errors?.[0]?.extensions?.code, refused.headers["retry-after"]],
      refusedBadBody: [refusedBadBody.status, refusedBadBody.body.errors?.[0]?.extensions?.code],
      again: [again.status, again.body.errors?.[0]?.extensions?.code, again.headers["www-authenticate"]],
    }).toEqual({
      admitted: [200, "hi"],
      refused: [429, "RATE_LIMITED", "7"],
      refusedBadBody: [429, "RATE_LIMITED"],
      again: [401, "UNAUTHENTICATED", 'Bearer error="invalid_token"'],
    });
  });

  it("should ask the admission after the body when the hook says so, its refusal before the body's error", async () => {
    const ask = (after: string, body = ECHO) =>
      request(service.url, { headers: { ...JSON_TYPE, "x-after-body": after }, body });
    seenAfterBody.length = 0;
    const admitted = await ask("admit");
    const refused = await ask("refuse");
    const refusedBadBody = await ask("refuse", "{not json");
    const admittedBadBody = await ask("admit", "{not json");
    const pendingRefused = await ask("pending");
    expect({
      statuses: [admitted, refused, refusedBadBody, admittedBadBody, pendingRefused].map((a) => a.status),
      echo: admitted.body.data?.echo,
      codes: [refusedBadBody, admittedBadBody].map((a) => a.body.errors?.[0]?.extensions?.code),
      seen: seenAfterBody,
    }).toEqual({
      statuses: [200, 429, 429, 400, 429],
      echo: "hi",
      codes: ["RATE_LIMITED", "BAD_REQUEST"],
      seen: [JSON.parse(ECHO), JSON.parse(ECHO), undefined, undefined, JSON.parse(ECHO)],
    });
  });

  it("should take the client address from X-Forwarded-For only from a trusted proxy", async () => {
    const forwarded = { ...JSON_TYPE, "x-forwarded-for": "203.0.113.9" };
    await request(service.url, { headers: forwarded, body: ECHO });
    await request(trusting.url, { headers: forwarded, body: ECHO });
    const ips = seenByHook.slice(-2).map((seen) => seen.clientIp);
    expect(ips).toEqual(["127.0.0.1", "203.0.113.9"]);
  });

  it("should serve the probes and extra GET routes, and 404 anything else", async () => {
    const base = service.url.replace(/\/graphql$/, "");
    const answers = {
      healthz: await request(base, { method: "GET", path: "/healthz" }),
      healthzSlash: await request(base, { method: "GET", path: "/healthz/?x=1" }),
      readyz: await request(base, { method: "GET", path: "/readyz" }),
      extra: await request(base, { method: "GET", path: "/extra" }),
      postHealthz: await request(base, { method: "POST", path: "/healthz" }),
      nowhere: await request(base, { method: "GET", path: "/nowhere" }),
      underGraphql: await request(base, {
        method: "POST",
        path: "/graphql/more",
        headers: JSON_TYPE,
        body: ECHO,
      }),
    };
    expect(
      Object.fromEntries(Object.entries(answers).map(([name, answer]) => [name, answer.status])),
    ).toEqual({
      healthz: 200,
      healthzSlash: 200,
      readyz: 200,
      extra: 200,
      postHealthz: 404,
      nowhere: 404,
      underGraphql: 404,
    });
    expect(answers.healthz.body).toEqual({ status: "ok", service: "front" });
    expect(answers.extra.text).toBe("extra");
  });
});
