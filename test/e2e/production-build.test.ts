import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { generateSigningKeyJwk } from "@hv/kit";
import {
  SCHEMAS,
  databaseUrlEnvVar,
  defaultDatabaseUrl,
  dropDatabase,
  ensureDatabase,
  migrateDeploy,
  withDatabaseName,
} from "@hv/prisma";
import { BUILT_PROCESSES, LAUNCHER_ENTRY, REPOSITORY_ROOT } from "../../scripts/build/processes";
import { freePort } from "../support/ports";
import { UsersClient, type SignedIn } from "../support/users-client";
import { startSmtpSink, tokenFromMail, type SmtpSink } from "../support/smtp-sink";
import { eventually, phone, Subscription, type Phone } from "./gateway/harness";
import { startFakeApns, startFakeFcm, type FakeApns, type FakeFcm } from "./push/fake-providers";

/**
 * The built system in production mode: `npm run build`'s dist/<process>/main.js files (the very
 * files the images copy), all seven started by `npm run start:prod` (dist/start-prod.js) with plain
 * Node and NODE_ENV=production, secrets made for this run, databases and Redis prefix of their own,
 * FCM and APNs as local fakes; then a phone's day through the gateway. Any line a process logs at
 * `error` or `fatal`, or a process that exits, fails it.
 */

/** Where the app's links in mails point (the phone opens them; nothing serves it here). */
const LINK_BASE = "https://app.example";
const LOG_LEVELS_THAT_FAIL = new Set(["error", "fatal"]);
const SUBSCRIBE_FEED = `subscription { myChatEvents { kind conversationId seq actor { id } message { id seq text sender { id displayName } } } }`;

interface FeedEvent {
  kind: string;
  conversationId: string;
  seq: number;
  actor: { id: string } | null;
  message: {
    id: string;
    seq: number;
    text: string | null;
    sender: { id: string; displayName: string };
  } | null;
}

interface LoggedLine {
  stream: "stdout" | "stderr";
  text: string;
  json?: { level?: string; service?: string; msg?: string };
}

/** Node's own warnings on stderr (deprecations): reported, not failures. */
const NODE_WARNING = /^\(node:\d+\) (\[\w+\] )?\w*Warning|^\(Use `node --trace-/;

/** The instrumentation scopes of the spans each service exported (an OTLP/HTTP JSON collector). */
async function startCollector(): Promise<{
  url: string;
  scopes: Map<string, Set<string>>;
  close(): Promise<void>;
}> {
  const scopes = new Map<string, Set<string>>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ scope: { name: string }; spans: unknown[] }>;
        }>;
      };
      for (const resourceSpans of body.resourceSpans) {
        const service =
          resourceSpans.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
        const seen = scopes.get(service) ?? new Set<string>();
        for (const scope of resourceSpans.scopeSpans) if (scope.spans.length > 0) seen.add(scope.scope.name);
        scopes.set(service, seen);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    scopes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the built system in production mode (npm run build, npm run start:prod)", () => {
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const databaseUrls = Object.fromEntries(
    SCHEMAS.map((name) => [
      databaseUrlEnvVar(name),
      withDatabaseName(
        process.env[databaseUrlEnvVar(name)] || defaultDatabaseUrl(name),
        `hv_test_${runId}_prod_${name}`,
      ),
    ]),
  );
  const mediaDir = mkdtempSync(path.join(os.tmpdir(), "hv-prod-media-"));
  const lines: LoggedLine[] = [];
  const phones: Phone[] = [];
  let launcher: ChildProcess | undefined;
  let exited: Promise<number | null>;
  let fcm: FakeFcm;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let apns: FakeApns;
  let mail: SmtpSink;
  let gatewayUrl: string;
  let client: UsersClient;
  let ports: Record<string, string> = {};

  const problems = () =>
    lines.filter(
      (line) =>
        (line.json?.level !== undefined && LOG_LEVELS_THAT_FAIL.has(line.json.level)) ||
        (line.stream === "stderr" && !NODE_WARNING.test(line.text)),
    );
  const servicesThatLogged = () => new Set(lines.map((line) => line.json?.service).filter(Boolean));

  beforeAll(async () => {
    const missing = [...BUILT_PROCESSES.map((proc) => proc.entry), LAUNCHER_ENTRY].filter(
      (entry) => !existsSync(path.join(REPOSITORY_ROOT, entry)),
    );
    if (missing.length > 0)
      throw new Error(`not built: ${missing.join(", ")} (npm test builds first; alone: pnpm run build)`);

    await Promise.all(
      SCHEMAS.map(async (name) => {
        const url = databaseUrls[databaseUrlEnvVar(name)]!;
        await ensureDatabase(url);
        await migrateDeploy(name, url);
      }),
    );

    // The push providers' credentials, made for this run, and local fakes that check them.
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const serviceAccount = {
      type: "service_account",
      project_id: "haiyvee-prod-test",
      private_key_id: "k1",
      client_email: "push@haiyvee-prod-test.iam.gserviceaccount.com",
      private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: "https://oauth2.googleapis.com/token",
    };
    fcm = await startFakeFcm(serviceAccount);
    collector = await startCollector();
    mail = await startSmtpSink();
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const apnsKey = { keyId: "PRODTEST01", teamId: "TEAMPROD01" };
    apns = await startFakeApns({
      publicKeyPem: ec.publicKey.export({ type: "spki", format: "pem" }).toString(),
      ...apnsKey,
    });

    ports = Object.fromEntries(
      await Promise.all(
        [...BUILT_PROCESSES.map((proc) => proc.portVariable), "GATEWAY_METRICS_PORT", "MEDIA_FILES_PORT"].map(
          async (variable) => [variable, String(await freePort())] as const,
        ),
      ),
    );
    const subgraphUrl = (variable: string) => `http://127.0.0.1:${ports[variable]}/graphql`;
    gatewayUrl = subgraphUrl("GATEWAY_PORT");
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      LOG_LEVEL: "info",
      HOST: "127.0.0.1",
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      EVENTS_PREFIX: `hvprod_${runId}`,
      ...databaseUrls,
      ...ports,
      USERS_URL: subgraphUrl("USERS_PORT"),
      DISCOVERY_URL: subgraphUrl("DISCOVERY_PORT"),
      CHAT_URL: subgraphUrl("CHAT_PORT"),
      MEDIA_URL: subgraphUrl("MEDIA_PORT"),
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.USERS_PORT}/.well-known/jwks.json`,
      // Secrets production refuses to start without, made for this run.
      AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk(`prod-test-${runId}`)]),
      MEDIA_GRANT_SECRET: randomBytes(32).toString("base64url"),
      MEDIA_URL_SECRET: randomBytes(32).toString("base64url"),
      MEDIA_LOCAL_DIR: mediaDir,
      FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount),
      FCM_TOKEN_URL: fcm.tokenUrl,
      FCM_ENDPOINT: fcm.endpoint,
      APNS_KEY: ec.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      APNS_KEY_ID: apnsKey.keyId,
      APNS_TEAM_ID: apnsKey.teamId,
      APNS_TOPIC: "com.haiyvee.app",
      APNS_ENDPOINT: apns.endpoint,
      APNS_CA: apns.ca,
      // Mail (the users worker): a real SMTP server of this test's; the sign-ups open the mailed links.
      MAIL_SMTP_URL: mail.url,
      APP_LINK_BASE_URL: LINK_BASE,
      // Tracing on, to this test's collector: OpenTelemetry must still patch what the bundles require.
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: "200",
      // Every phone of this test comes from 127.0.0.1: the per-address budgets are not what is tested here.
      GATEWAY_RATE_LIMIT_IP: "100000/1m",
      GATEWAY_RATE_LIMIT_SIGNUP: "100000/1m",
    };
    launcher = spawn(process.execPath, [path.join(REPOSITORY_ROOT, LAUNCHER_ENTRY)], {
      cwd: REPOSITORY_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    exited = new Promise((resolve) => launcher!.on("exit", (code) => resolve(code)));
    for (const stream of ["stdout", "stderr"] as const) {
      let pending = "";
      launcher[stream]!.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        const complete = pending.split("\n");
        pending = complete.pop() ?? "";
        for (const text of complete.filter((line) => line.trim() !== "")) {
          let json: LoggedLine["json"];
          try {
            json = JSON.parse(text) as LoggedLine["json"];
          } catch {
            json = undefined;
          }
          lines.push({ stream, text, ...(json ? { json } : {}) });
        }
      });
    }
    // Bounded by the launcher: it gives up (and exits 1) when a process is not ready within 60 s.
    await eventually(
      () =>
        launcher!.exitCode !== null ||
        lines.some((line) => line.text.startsWith("All 7 built processes ready")),
      "the launcher to report every process ready",
      6000,
    );
    if (launcher.exitCode !== null) {
      throw new Error(
        `the launcher exited (${launcher.exitCode}):\n${lines.map((line) => line.text).join("\n")}`,
      );
    }
    client = new UsersClient(gatewayUrl, undefined, async (email) =>
      tokenFromMail(
        await mail.waitForMail(email, /Confirm your email address/, 60_000),
        LINK_BASE,
        "verify-email",
      ),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all(phones.map((p) => p.dispose()));
    if (launcher && launcher.exitCode === null) {
      launcher.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
      if (launcher.exitCode === null) launcher.kill("SIGKILL");
    }
    await fcm?.close();
    await collector?.close();
    await apns?.close();
    await mail?.close();
    for (const url of Object.values(databaseUrls)) await dropDatabase(url).catch(() => undefined);
    rmSync(mediaDir, { recursive: true, force: true });
  }, 60_000);

  const send = async <T>(
    who: SignedIn,
    query: string,
    variables: Record<string, unknown> = {},
  ): Promise<T> => {
    const response = await client.request<T>(query, variables, who.accessToken);
    if (!response.body.data || response.body.errors)
      throw new Error(`${query.slice(0, 60)}: ${JSON.stringify(response.body.errors)}`);
    return response.body.data;
  };

  it("should run every process from its built entry file, with plain Node, in production mode", async () => {
    for (const proc of BUILT_PROCESSES) {
      const readyz = await fetch(`http://127.0.0.1:${ports[proc.portVariable]}/readyz`);
      expect({ process: proc.name, status: readyz.status }).toEqual({ process: proc.name, status: 200 });
    }
    // Every process wrote JSON logs under its own name (nothing ran from source or in one process).
    expect([...servicesThatLogged()].sort()).toEqual(
      expect.arrayContaining(BUILT_PROCESSES.map((proc) => proc.name).sort()),
    );
    // Production: no introspection through the gateway.
    const introspection = await client.request(`{ __schema { queryType { name } } }`);
    expect(introspection.body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
  });

  it("should sign up two people, match them, deliver a chat message over graphql-ws, and serve an uploaded photo", async () => {
    const ada = await client.signUp({ displayName: "Ada" });
    const bob = await client.signUp({ displayName: "Bob" });

    // Ada's Android phone, so the match notification goes out through the (fake) FCM.
    const adaPushToken = `prod-test-${randomUUID()}`;
    await send(ada, `mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { id } }`, {
      input: { platform: "ANDROID", pushToken: adaPushToken, appVersion: "1.0.0" },
    });

    // Both in Berlin, a few hundred metres apart; like each other.
    await send(ada, `mutation { updateLocation(latitude: 52.5200, longitude: 13.4050) { updatedAt } }`);
    await send(bob, `mutation { updateLocation(latitude: 52.5230, longitude: 13.4100) { updatedAt } }`);
    const first = await send<{ like: { matched: boolean } }>(
      ada,
      `mutation($u: ID!) { like(userId: $u) { matched } }`,
      { u: bob.userId },
    );
    const second = await send<{
      like: { matched: boolean; match: { user: { displayName: string } } | null };
    }>(bob, `mutation($u: ID!) { like(userId: $u) { matched match { user { displayName } } } }`, {
      u: ada.userId,
    });
    expect({ first: first.like.matched, second: second.like }).toEqual({
      first: false,
      second: { matched: true, match: { user: { displayName: "Ada" } } },
    });

    // The match event reaches Chat (a conversation for both) and the push worker (Ada's phone).
    const conversationsOf = (who: SignedIn) =>
      send<{ conversations: { edges: Array<{ node: { id: string } }> } }>(
        who,
        `{ conversations(first: 5) { edges { node { id } } } }`,
      );
    let conversationId = "";
    await eventually(
      async () => {
        conversationId = (await conversationsOf(ada)).conversations.edges[0]?.node.id ?? "";
        return conversationId !== "";
      },
      "the match's conversation",
      1500,
    );
    expect((await conversationsOf(bob)).conversations.edges.map((edge) => edge.node.id)).toEqual([
      conversationId,
    ]);
    await eventually(() => fcm.sendsTo(adaPushToken).length > 0, "the match notification at FCM", 1500);
    expect(fcm.sendsTo(adaPushToken)[0]).toMatchObject({
      status: 200,
      body: { message: { token: adaPushToken } },
    });

    // Both phones subscribed over graphql-ws; Ada sends, Bob receives (and Ada sees her own message).
    const ws = gatewayUrl.replace(/^http/, "ws");
    const adaPhone = phone(ws, { authorization: `Bearer ${ada.accessToken}` });
    const bobPhone = phone(ws, { authorization: `Bearer ${bob.accessToken}` });
    phones.push(adaPhone, bobPhone);
    const adaFeed = new Subscription<{ myChatEvents: FeedEvent }>(adaPhone.client, SUBSCRIBE_FEED);
    const bobFeed = new Subscription<{ myChatEvents: FeedEvent }>(bobPhone.client, SUBSCRIBE_FEED);
    // Live once each sees its own DELIVERED marker come back (a subscription has no "started" signal).
    for (const [who, feed] of [
      [ada, adaFeed],
      [bob, bobFeed],
    ] as const) {
      await eventually(
        async () => {
          await send(who, `mutation($c: ID!) { markDelivered(conversationId: $c, seq: 0) }`, {
            c: conversationId,
          });
          return feed.results.some(
            (r) => r.data?.myChatEvents.kind === "DELIVERED" && r.data.myChatEvents.actor?.id === who.userId,
          );
        },
        "the subscription to go live",
        200,
      );
    }
    const sent = await send<{ sendMessage: { id: string; seq: number } }>(
      ada,
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`,
      { input: { conversationId, clientMessageId: randomUUID(), text: "hello from the build" } },
    );
    const added = (feed: Subscription<{ myChatEvents: FeedEvent }>) =>
      feed.results.map((r) => r.data?.myChatEvents).filter((event) => event?.kind === "MESSAGE_ADDED");
    await bobFeed.until(() => added(bobFeed).length === 1, "Bob to receive the message");
    await adaFeed.until(() => added(adaFeed).length === 1, "Ada to see her message");
    expect(added(bobFeed)[0]?.message).toEqual({
      id: sent.sendMessage.id,
      seq: sent.sendMessage.seq,
      text: "hello from the build",
      sender: { id: ada.userId, displayName: "Ada" },
    });

    // A photo: createUpload, PUT the bytes, completeUpload, the media worker (sharp in its sandboxed
    // processor) makes the variants; the signed URL serves the image.
    const photo = await sharp({
      create: { width: 640, height: 480, channels: 3, background: { r: 30, g: 140, b: 90 } },
    })
      .jpeg()
      .toBuffer();
    const created = await send<{
      createUpload: {
        media: { id: string };
        uploadUrl: string;
        uploadMethod: string;
        uploadHeaders: Array<{ name: string; value: string }>;
      };
    }>(
      bob,
      `mutation($input: CreateUploadInput!) { createUpload(input: $input) { media { id } uploadUrl uploadMethod uploadHeaders { name value } } }`,
      {
        input: { kind: "IMAGE", contentType: "image/jpeg", byteSize: photo.length, purpose: "PROFILE_PHOTO" },
      },
    );
    const upload = created.createUpload;
    const headers = Object.fromEntries(
      upload.uploadHeaders.filter((h) => h.name !== "content-length").map((h) => [h.name, h.value]),
    );
    const put = await fetch(upload.uploadUrl, { method: upload.uploadMethod, body: photo, headers });
    expect(put.status).toBe(200);
    await send(bob, `mutation($id: ID!) { completeUpload(id: $id) { id } }`, { id: upload.media.id });
    type Media = { status: string; width: number | null; height: number | null; url: string | null };
    let media: Media | null = null;
    await eventually(
      async () => {
        media = (
          await send<{ myMedia: Media | null }>(
            bob,
            `query($id: ID!) { myMedia(id: $id) { status width height url } }`,
            { id: upload.media.id },
          )
        ).myMedia;
        return media?.status === "READY" || media?.status === "FAILED";
      },
      "the media worker to process the photo",
      1500,
    );
    const ready = media as Media | null;
    expect({ status: ready?.status, width: ready?.width, height: ready?.height }).toEqual({
      status: "READY",
      width: 640,
      height: 480,
    });
    const image = await fetch(ready!.url!);
    const bytes = Buffer.from(await image.arrayBuffer());
    expect({ status: image.status, type: image.headers.get("content-type")?.split("/")[0] }).toEqual({
      status: 200,
      type: "image",
    });
    expect((await sharp(bytes).metadata()).width).toBeGreaterThan(0);
  }, 120_000);

  it("should trace the built processes: HTTP, GraphQL, PostgreSQL, Redis and the gateway's fetches", async () => {
    const expected: Record<string, string[]> = {
      gateway: ["http", "undici", "graphql"],
      users: ["http", "graphql", "pg"],
      discovery: ["http", "graphql", "pg"],
      chat: ["http", "graphql", "pg", "ioredis"],
      media: ["http", "graphql", "pg"],
    };
    const scopesOf = (service: string) =>
      [...(collector.scopes.get(service) ?? [])].map((name) =>
        name.replace("@opentelemetry/instrumentation-", ""),
      );
    await eventually(
      () =>
        Object.entries(expected).every(([service, names]) =>
          names.every((name) => scopesOf(service).includes(name)),
        ),
      "the spans of every instrumentation",
      1500,
    ).catch(() => undefined);
    expect(Object.fromEntries(Object.keys(expected).map((service) => [service, scopesOf(service)]))).toEqual(
      Object.fromEntries(
        Object.entries(expected).map(([service, names]) => [service, expect.arrayContaining(names)]),
      ),
    );
  });

  it("should log nothing at error level or above, and have every process still running", () => {
    expect(launcher?.exitCode).toBeNull();
    expect(problems().map((line) => line.text)).toEqual([]);
  });

  it("should stop every process cleanly on SIGTERM", async () => {
    launcher!.kill("SIGTERM");
    expect({ code: await exited, problems: problems().map((line) => line.text) }).toEqual({
      code: 0,
      problems: [],
    });
  }, 60_000);
});
