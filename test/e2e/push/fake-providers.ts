/**
 * Local stand-ins for the two push providers we cannot reach from tests, speaking their wire
 * protocols: Google's OAuth 2.0 token endpoint and FCM HTTP v1 (HTTP/1.1), and APNs (HTTP/2 over
 * TLS with a certificate made here). They check credentials the way the real services do (the
 * JWTs' signatures and claims), record every request, and answer what a test scripts per device
 * token (default: success).
 */
import { createPublicKey, createVerify, randomBytes, randomUUID, verify, type KeyObject } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { generate } from "selfsigned";

export interface ScriptedReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Answer only after this long (a slow provider). */
  delayMs?: number;
}

const pause = (ms: number | undefined) =>
  ms ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();

function decodeJwt(token: string): {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
} {
  const [header = "", claims = "", signature = ""] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(claims, "base64url").toString("utf8")) as Record<string, unknown>,
    signingInput: `${header}.${claims}`,
    signature: Buffer.from(signature, "base64url"),
  };
}

class Script {
  private readonly replies = new Map<string, ScriptedReply[]>();
  set(token: string, replies: ScriptedReply[]): void {
    this.replies.set(token, [...replies]);
  }
  next(token: string): ScriptedReply | undefined {
    return this.replies.get(token)?.shift();
  }
}

function listen(server: http.Server | http2.Http2SecureServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

// ---------------------------------------------------------------- FCM

export interface TokenRequest {
  contentType: string | undefined;
  grantType: string | null;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signatureValid: boolean;
}

export interface FcmRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: { message?: Record<string, any> } & Record<string, unknown>;
  /** What the fake answered. */
  status: number;
}

export interface FakeFcm {
  /** The base URL to use as FCM_ENDPOINT. */
  endpoint: string;
  /** The OAuth token endpoint to use as FCM_TOKEN_URL. */
  tokenUrl: string;
  tokenRequests: TokenRequest[];
  /** Access tokens this fake issued. */
  issuedTokens: string[];
  requests: FcmRequest[];
  /** Replies for sends to this device token, in order; then success. */
  script(deviceToken: string, replies: ScriptedReply[]): void;
  sendsTo(deviceToken: string): FcmRequest[];
  close(): Promise<void>;
}

async function readBody(req: http.IncomingMessage | http2.Http2ServerRequest): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** Google's token endpoint and FCM HTTP v1, for one service account. */
export async function startFakeFcm(serviceAccount: {
  client_email: string;
  private_key: string;
  project_id: string;
}): Promise<FakeFcm> {
  const publicKey: KeyObject = createPublicKey(serviceAccount.private_key);
  const tokenRequests: TokenRequest[] = [];
  const issuedTokens: string[] = [];
  const requests: FcmRequest[] = [];
  const script = new Script();
  const json = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8", ...headers });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    void (async () => {
      const text = await readBody(req);
      const url = new URL(req.url ?? "/", "http://fake");
      if (req.method === "POST" && url.pathname === "/token") {
        const form = new URLSearchParams(text);
        const assertion = form.get("assertion") ?? "";
        const jwt = decodeJwt(assertion);
        const verifier = createVerify("RSA-SHA256");
        verifier.update(jwt.signingInput);
        const signatureValid = verifier.verify(publicKey, jwt.signature);
        tokenRequests.push({
          contentType: req.headers["content-type"],
          grantType: form.get("grant_type"),
          header: jwt.header,
          claims: jwt.claims,
          signatureValid,
        });
        const now = Math.floor(Date.now() / 1000);
        const claimsOk =
          jwt.claims.iss === serviceAccount.client_email &&
          typeof jwt.claims.exp === "number" &&
          jwt.claims.exp > now &&
          form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer";
        if (!signatureValid || !claimsOk)
          return json(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
        const accessToken = `ya29.fake-${randomBytes(12).toString("hex")}`;
        issuedTokens.push(accessToken);
        return json(res, 200, { access_token: accessToken, expires_in: 3599, token_type: "Bearer" });
      }
      const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname);
      if (req.method === "POST" && send) {
        let body: FcmRequest["body"] = {};
        try {
          body = JSON.parse(text) as FcmRequest["body"];
        } catch {
          // recorded as empty; answered 400 below
        }
        const record: FcmRequest = {
          method: req.method,
          path: url.pathname,
          authorization: req.headers.authorization,
          contentType: req.headers["content-type"],
          body,
          status: 0,
        };
        requests.push(record);
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
        if (!bearer || !issuedTokens.includes(bearer)) {
          record.status = 401;
          return json(res, 401, {
            error: {
              code: 401,
              message: "Request had invalid authentication credentials.",
              status: "UNAUTHENTICATED",
            },
          });
        }
        if (send[1] !== serviceAccount.project_id) {
          record.status = 403;
          return json(res, 403, {
            error: { code: 403, message: "Permission denied", status: "PERMISSION_DENIED" },
          });
        }
        const token = body.message?.token;
        if (typeof token !== "string") {
          record.status = 400;
          return json(res, 400, {
            error: { code: 400, message: "Invalid JSON payload", status: "INVALID_ARGUMENT" },
          });
        }
        const reply = script.next(token);
        record.status = reply?.status ?? 200;
        await pause(reply?.delayMs);
        if (reply && reply.status !== 200) return json(res, reply.status, reply.body ?? {}, reply.headers);
        return json(res, 200, { name: `projects/${send[1]}/messages/${randomUUID()}` });
      }
      json(res, 404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
    })();
  });
  const port = await listen(server);
  const base = `http://127.0.0.1:${port}`;
  return {
    endpoint: base,
    tokenUrl: `${base}/token`,
    tokenRequests,
    issuedTokens,
    requests,
    script: (token, replies) => script.set(token, replies),
    sendsTo: (token) => requests.filter((request) => request.body.message?.token === token),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** FCM's error body for an error code (`UNREGISTERED`, `QUOTA_EXCEEDED`, `INVALID_ARGUMENT`…). */
export function fcmError(
  status: number,
  grpcStatus: string,
  errorCode: string,
  headers?: Record<string, string>,
): ScriptedReply {
  return {
    status,
    ...(headers ? { headers } : {}),
    body: {
      error: {
        code: status,
        message: `fake ${errorCode}`,
        status: grpcStatus,
        details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }],
      },
    },
  };
}

// ---------------------------------------------------------------- APNs

export interface ApnsRequest {
  method: string;
  path: string;
  /** Every header as received (lower-case names), pseudo-headers included. */
  headers: Record<string, string>;
  jwtHeader: Record<string, unknown>;
  jwtClaims: Record<string, unknown>;
  jwtValid: boolean;
  payload: Record<string, any>;
  status: number;
}

export interface FakeApns {
  /** https://127.0.0.1:<port>, for APNS_ENDPOINT. */
  endpoint: string;
  /** The server certificate (PEM), for APNS_CA. */
  ca: string;
  requests: ApnsRequest[];
  script(deviceToken: string, replies: ScriptedReply[]): void;
  sendsTo(deviceToken: string): ApnsRequest[];
  close(): Promise<void>;
}

/** APNs' provider API (`POST /3/device/<token>` over HTTP/2 + TLS), verifying ES256 provider tokens. */
export async function startFakeApns(providerKey: {
  publicKeyPem: string;
  keyId: string;
  teamId: string;
}): Promise<FakeApns> {
  const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 7, ip: "127.0.0.1" },
          { type: 2, value: "localhost" },
        ],
      },
    ],
  });
  const publicKey = createPublicKey(providerKey.publicKeyPem);
  const requests: ApnsRequest[] = [];
  const script = new Script();
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ key: pems.private, cert: pems.cert, allowHTTP1: false });
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const flat = Object.fromEntries(
        Object.entries(headers).map(([name, value]) => [
          name,
          Array.isArray(value) ? value.join(",") : String(value),
        ]),
      );
      const path = flat[":path"] ?? "";
      const bearer = /^bearer (.+)$/i.exec(flat.authorization ?? "")?.[1] ?? "";
      let jwtHeader: Record<string, unknown> = {};
      let jwtClaims: Record<string, unknown> = {};
      let jwtValid = false;
      try {
        const jwt = decodeJwt(bearer);
        jwtHeader = jwt.header;
        jwtClaims = jwt.claims;
        jwtValid =
          jwt.header.alg === "ES256" &&
          verify(
            "sha256",
            Buffer.from(jwt.signingInput),
            { key: publicKey, dsaEncoding: "ieee-p1363" },
            jwt.signature,
          );
      } catch {
        jwtValid = false;
      }
      let payload: Record<string, any> = {};
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, any>;
      } catch {
        payload = {};
      }
      const record: ApnsRequest = {
        method: flat[":method"] ?? "",
        path,
        headers: flat,
        jwtHeader,
        jwtClaims,
        jwtValid,
        payload,
        status: 0,
      };
      requests.push(record);
      const apnsId = flat["apns-id"] ?? randomUUID();
      const answer = (status: number, body?: unknown, extra: Record<string, string> = {}) => {
        record.status = status;
        stream.respond({
          ":status": status,
          "apns-id": apnsId,
          ...(body ? { "content-type": "application/json" } : {}),
          ...extra,
        });
        stream.end(body ? JSON.stringify(body) : undefined);
      };
      if (!jwtValid || jwtHeader.kid !== providerKey.keyId || jwtClaims.iss !== providerKey.teamId) {
        return answer(403, { reason: "InvalidProviderToken" });
      }
      const device = /^\/3\/device\/([0-9A-Za-z]+)$/.exec(path)?.[1];
      if (flat[":method"] !== "POST" || !device) return answer(404, { reason: "BadPath" });
      const reply = script.next(device);
      void pause(reply?.delayMs).then(() => {
        if (reply && reply.status !== 200) answer(reply.status, reply.body, reply.headers);
        else answer(200);
      });
    });
  });
  const port = await listen(server);
  return {
    endpoint: `https://127.0.0.1:${port}`,
    ca: pems.cert,
    requests,
    script: (token, replies) => script.set(token, replies),
    sendsTo: (token) => requests.filter((request) => request.path === `/3/device/${token}`),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
