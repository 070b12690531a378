import { spawn } from "node:child_process";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import path from "node:path";
import { createAccessTokenIssuer, generateSigningKeyJwk } from "@hv/kit";
import { freePort } from "../support/ports";
import { seedPerson, testDatabases } from "../support/seed";
import { graphqlRequest } from "../support/system";

const ROOT = path.join(__dirname, "..", "..");

describe("npm start (scripts/run-all.ts)", () => {
  it("should start every process, serve a query across all four subgraphs, restart a crashed one in development, and stop cleanly on Ctrl-C", async () => {
    const ports = {
      USERS_PORT: 0,
      DISCOVERY_PORT: 0,
      CHAT_PORT: 0,
      MEDIA_PORT: 0,
      GATEWAY_PORT: 0,
      GATEWAY_METRICS_PORT: 0,
      PUSH_WORKER_PORT: 0,
      MEDIA_FILES_PORT: 0,
      MEDIA_WORKER_PORT: 0,
    };
    for (const key of Object.keys(ports) as Array<keyof typeof ports>) ports[key] = await freePort();
    // Our own signing key, so the test can sign in as the seeded person (conversations are for members).
    const signingKey = generateSigningKeyJwk("run-all-test");
    const tokens = createAccessTokenIssuer({
      keys: [signingKey],
      issuer: "haiyvee",
      audience: "haiyvee-api",
      ttlSeconds: 300,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AUTH_SIGNING_KEYS: JSON.stringify([signingKey]),
      AUTH_ISSUER: "haiyvee",
      AUTH_AUDIENCE: "haiyvee-api",
      NODE_ENV: "development",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      ...Object.fromEntries(Object.entries(ports).map(([key, port]) => [key, String(port)])),
      USERS_URL: `http://127.0.0.1:${ports.USERS_PORT}/graphql`,
      DISCOVERY_URL: `http://127.0.0.1:${ports.DISCOVERY_PORT}/graphql`,
      CHAT_URL: `http://127.0.0.1:${ports.CHAT_PORT}/graphql`,
      MEDIA_URL: `http://127.0.0.1:${ports.MEDIA_PORT}/graphql`,
    };
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "run-all.ts")], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

    const dbs = testDatabases();
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes("All services ready") && Date.now() < deadline && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(output).toContain(`Apollo Sandbox:   http://localhost:${ports.GATEWAY_PORT}/graphql`);
      // No MAIL_SMTP_URL in development: a local sink catches the account mails.
      expect(output).toMatch(
        /Mails: +smtp:\/\/127\.0\.0\.1:\d+ catches them; each is written to .*\.data\/mail\/\*\.eml/,
      );

      const { user, conversation } = await seedPerson(dbs, "Linus");
      const response = await graphqlRequest(
        `http://127.0.0.1:${ports.GATEWAY_PORT}/graphql`,
        `query($u: ID!, $c: ID!) { user(id: $u) { displayName isDiscoverable photos { kind } } conversation(id: $c) { memberCount } }`,
        { u: user.id, c: conversation.id },
        {
          authorization: `Bearer ${(await tokens.issue({ userId: user.id, sessionId: randomUUID(), role: "USER" })).token}`,
        },
      );
      expect(response.body).toEqual({
        data: {
          user: { displayName: "Linus", isDiscoverable: true, photos: [{ kind: "IMAGE" }] },
          conversation: { memberCount: 2 },
        },
      });

      // Development: a crashed process is started again, and the supergraph answers as before.
      const firstPid = Number(/discovery started \(pid (\d+)\)/.exec(output)?.[1]);
      expect(firstPid).toBeGreaterThan(0);
      process.kill(firstPid, "SIGKILL");
      const restartDeadline = Date.now() + 90_000;
      while (
        !output.includes("discovery is ready again") &&
        Date.now() < restartDeadline &&
        child.exitCode === null
      ) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(output).toContain(
        "discovery exited unexpectedly (SIGKILL); restarting it in 500 ms (restart 1 in a row)",
      );
      const pids = [...output.matchAll(/discovery started \(pid (\d+)\)/g)].map((match) => Number(match[1]));
      expect({
        starts: pids.length,
        newPid: pids[1] !== firstPid,
        ready: output.includes("discovery is ready again"),
      }).toEqual({ starts: 2, newPid: true, ready: true });
      const again = await graphqlRequest(
        `http://127.0.0.1:${ports.GATEWAY_PORT}/graphql`,
        `query($u: ID!) { user(id: $u) { displayName isDiscoverable } }`,
        { u: user.id },
        {
          authorization: `Bearer ${(await tokens.issue({ userId: user.id, sessionId: randomUUID(), role: "USER" })).token}`,
        },
      );
      expect(again.body).toEqual({ data: { user: { displayName: "Linus", isDiscoverable: true } } });

      child.kill("SIGINT");
      // 0 only when every process stopped cleanly on the first signal.
      expect({ exitCode: await exited, output }).toEqual({
        exitCode: 0,
        output: expect.not.stringContaining("did not stop cleanly"),
      });
      for (const port of Object.values(ports)) {
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      }
    } finally {
      if (child.exitCode === null) {
        // Let it stop its (detached) children before giving up on it.
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await dbs.close();
    }
  }, 300_000);
  it("should stop everything and exit 1 in production when one process exits, restarting nothing", async () => {
    const ports = {
      USERS_PORT: 0,
      DISCOVERY_PORT: 0,
      CHAT_PORT: 0,
      MEDIA_PORT: 0,
      GATEWAY_PORT: 0,
      GATEWAY_METRICS_PORT: 0,
      PUSH_WORKER_PORT: 0,
      MEDIA_FILES_PORT: 0,
      MEDIA_WORKER_PORT: 0,
    };
    for (const key of Object.keys(ports) as Array<keyof typeof ports>) ports[key] = await freePort();
    // Production refuses to start without its secrets and real push providers: give it some (nothing is sent).
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: "production",
      AUTH_SIGNING_KEYS: JSON.stringify([generateSigningKeyJwk("run-all-production-test")]),
      AUTH_ISSUER: "haiyvee",
      AUTH_AUDIENCE: "haiyvee-api",
      MEDIA_GRANT_SECRET: "production-test-grant-secret-0123456789abcdef",
      MEDIA_URL_SECRET: "production-test-url-secret-0123456789abcdef",
      MEDIA_PUBLIC_URL: "http://127.0.0.1:1/media",
      FCM_SERVICE_ACCOUNT: JSON.stringify({
        type: "service_account",
        private_key_id: "k1",
        project_id: "haiyvee-test",
        client_email: "push@haiyvee-test.iam.gserviceaccount.com",
        private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        token_uri: "http://127.0.0.1:1/token",
      }),
      FCM_ENDPOINT: "http://127.0.0.1:1",
      APNS_KEY: ec.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      APNS_KEY_ID: "ABC123DEFG",
      APNS_TEAM_ID: "TEAM123456",
      APNS_TOPIC: "com.haiyvee.app",
      APNS_ENDPOINT: "https://127.0.0.1:1",
      // The users worker sends account mails: production names an SMTP server and the link base.
      MAIL_SMTP_URL: "smtp://127.0.0.1:1",
      APP_LINK_BASE_URL: "https://app.example",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      ...Object.fromEntries(Object.entries(ports).map(([key, port]) => [key, String(port)])),
      USERS_URL: `http://127.0.0.1:${ports.USERS_PORT}/graphql`,
      DISCOVERY_URL: `http://127.0.0.1:${ports.DISCOVERY_PORT}/graphql`,
      CHAT_URL: `http://127.0.0.1:${ports.CHAT_PORT}/graphql`,
      MEDIA_URL: `http://127.0.0.1:${ports.MEDIA_PORT}/graphql`,
    };
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "run-all.ts")], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes("All services ready") && Date.now() < deadline && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(output).toContain("All services ready");
      const pid = Number(/discovery started \(pid (\d+)\)/.exec(output)?.[1]);
      process.kill(pid, "SIGKILL");
      expect(await exited).toBe(1);
      expect(output).toContain("discovery exited unexpectedly (SIGKILL); stopping everything");
      expect(output).not.toContain("restarting");
      expect(output.match(/discovery started/g)).toHaveLength(1);
      for (const port of Object.values(ports)) {
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      }
    } finally {
      if (child.exitCode === null) {
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    }
  }, 300_000);
});
