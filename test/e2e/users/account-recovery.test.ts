import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { Queue } from "bullmq";
import { redisOptions, loadRedisTarget } from "@hv/kit";
import { MAIL_QUEUE } from "@hv/users/src/mail/jobs";
import { loadPushConfig } from "@hv/users/src/push/config";
import { startPushWorker, type RunningPushWorker } from "@hv/users/src/push/worker";
import { capturingLogger } from "../../support/log-capture";
import { testDatabases, type TestDatabases } from "../../support/seed";
import { startSmtpSink, tokenFromMail, type SmtpSink } from "../../support/smtp-sink";
import { startSystem, testEnv, type RunningSystem } from "../../support/system";
import {
  errorCode,
  randomClientIp,
  SESSION_FIELDS,
  UsersClient,
  type SessionData,
} from "../../support/users-client";
import { waitFor } from "../../support/wait";

const LINK_BASE = "https://app.example";
const PASSWORD = "correct horse battery staple";

/** A port nothing listens on: an SMTP server that cannot be reached. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("account mails, recovery and known devices, through the gateway and a real SMTP server", () => {
  // Queues of this file only: no other test's users worker takes these mails.
  const prefix = `hvtest_mail_${randomBytes(4).toString("hex")}`;
  let system: RunningSystem;
  let dbs: TestDatabases;
  let client: UsersClient;
  let sink: SmtpSink;
  let worker: RunningPushWorker | undefined;
  const workerLog = capturingLogger("push-worker");

  const startUsersWorker = async (smtpUrl: string) =>
    startPushWorker(
      loadPushConfig(
        testEnv({
          EVENTS_PREFIX: prefix,
          MAIL_SMTP_URL: smtpUrl,
          APP_LINK_BASE_URL: LINK_BASE,
          MAIL_RETRY_BASE_MS: "100",
          PUSH_WORKER_PORT: "0",
        }),
      ),
      workerLog.logger,
    );

  beforeAll(async () => {
    dbs = testDatabases();
    sink = await startSmtpSink();
    system = await startSystem({ EVENTS_PREFIX: prefix });
    client = new UsersClient(system.gatewayUrl);
    worker = await startUsersWorker(sink.url);
  });
  afterAll(async () => {
    await worker?.stop();
    await system?.stop();
    await sink?.close();
    await dbs?.close();
  });

  const signUp = (email: string, password = PASSWORD, clientIp = randomClientIp()) =>
    client.request<{ signUp: { status: string; email: string } }>(
      `mutation($input: SignUpInput!) { signUp(input: $input) { status email } }`,
      { input: { email, password, displayName: "Sam", birthDate: "1992-02-02" } },
      undefined,
      clientIp,
    );
  const requestReset = (email: string, clientIp = randomClientIp()) =>
    client.request<{ requestPasswordReset: boolean }>(
      `mutation($e: String!) { requestPasswordReset(email: $e) }`,
      { e: email },
      undefined,
      clientIp,
    );
  const resetPassword = (token: string, newPassword: string) =>
    client.request<{ resetPassword: SessionData }>(
      `mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { ${SESSION_FIELDS} } }`,
      { input: { token, newPassword } },
    );
  const requestEmailChange = (accessToken: string, newEmail: string, password: string) =>
    client.request(
      `mutation($input: RequestEmailChangeInput!) { requestEmailChange(input: $input) }`,
      { input: { newEmail, password } },
      accessToken,
    );
  const confirmEmailChange = (accessToken: string, token: string) =>
    client.request(`mutation($t: String!) { confirmEmailChange(token: $t) }`, { t: token }, accessToken);
  const newAddress = () => `${randomUUID()}@example.test`;

  describe("sign-up and verification", () => {
    it("should mail a link that opens the account, signs in once, and nothing before it", async () => {
      const email = newAddress();
      const answer = await signUp(email);
      expect(answer.body).toEqual({ data: { signUp: { status: "VERIFICATION_PENDING", email } } });
      const mail = await sink.waitForMail(email, /Confirm your email address/);
      expect(mail.from).toBe("no-reply@haiyvee.invalid");
      expect(mail.text).not.toContain("Sam"); // nothing a person typed goes into a mail
      expect(errorCode(await client.logIn(email, PASSWORD))).toBe("INVALID_CREDENTIALS");

      const token = tokenFromMail(mail, LINK_BASE, "verify-email");
      const opened = await client.verifyEmail(token);
      const session = opened.body.data?.verifyEmail;
      expect(session).toMatchObject({
        user: { displayName: "Sam" },
        knownDeviceToken: expect.stringMatching(/^kd_/),
      });
      expect((await client.me(session!.accessToken)).body.data).toEqual({ me: { id: session!.user.id } });
      expect((await client.logIn(email, PASSWORD)).body.data?.logIn.user.id).toBe(session!.user.id);
      const again = await client.verifyEmail(token);
      expect(again.body.errors?.[0]?.extensions).toMatchObject({ code: "INVALID_TOKEN", reason: "used" });
    });

    it("should answer a taken address exactly like a new one and mail its owner instead", async () => {
      const owner = await client.signUp();
      const usersBefore = await dbs.users.user.count();
      const fresh = newAddress();
      const forFresh = await signUp(fresh, "someone else's passphrase");
      const forTaken = await signUp(owner.email.toUpperCase(), "someone else's passphrase");
      expect(forTaken.status).toBe(forFresh.status);
      expect(forTaken.body).toEqual({
        data: { signUp: { status: "VERIFICATION_PENDING", email: owner.email } },
      });
      expect(forFresh.body).toEqual({ data: { signUp: { status: "VERIFICATION_PENDING", email: fresh } } });

      const notice = await sink.waitForMail(owner.email, /already have an account/);
      expect(notice.text).not.toContain("token=");
      await sink.waitForMail(fresh, /Confirm your email address/);
      expect(await dbs.users.user.count()).toBe(usersBefore + 1); // the fresh address only
      expect((await client.logIn(owner.email, owner.password)).body.data?.logIn.user.id).toBe(owner.userId);
      expect(errorCode(await client.logIn(owner.email, "someone else's passphrase"))).toBe(
        "INVALID_CREDENTIALS",
      );
    });

    it("should open the account with the password of the sign-up whose link is opened", async () => {
      const email = newAddress();
      await signUp(email, "squatter's own passphrase");
      const squatterMail = await sink.waitForMail(email, /Confirm/);
      await signUp(email, "the owner's passphrase");
      await waitFor("the second link", () => sink.mails.filter((mail) => mail.to === email).length === 2);
      const ownerMail = sink.mails.filter((mail) => mail.to === email)[1]!;
      const opened = await client.verifyEmail(tokenFromMail(ownerMail, LINK_BASE, "verify-email"));
      expect(opened.body.errors).toBeUndefined();
      expect(errorCode(await client.logIn(email, "squatter's own passphrase"))).toBe("INVALID_CREDENTIALS");
      expect(errorCode(await client.logIn(email, "the owner's passphrase"))).toBeUndefined();
      const late = await client.verifyEmail(tokenFromMail(squatterMail, LINK_BASE, "verify-email"));
      expect(late.body.errors?.[0]?.extensions).toMatchObject({ code: "INVALID_TOKEN", reason: "used" });
    });
  });

  describe("password reset", () => {
    it("should answer the same for any address and mail only an existing one", async () => {
      const user = await client.signUp();
      const unknown = newAddress();
      const forUnknown = await requestReset(unknown);
      const forUser = await requestReset(user.email);
      expect(forUnknown.status).toBe(forUser.status);
      expect(forUnknown.body).toEqual(forUser.body);
      expect(forUser.body).toEqual({ data: { requestPasswordReset: true } });
      await sink.waitForMail(user.email, /Reset your password/);
      // Both were queued in this order; the known one arrived, the unknown one never was a mail.
      expect(sink.mails.filter((mail) => mail.to === unknown)).toEqual([]);
    });

    it("should reset with the mailed token once, end every session and forget every known device", async () => {
      const user = await client.signUp();
      const other = (await client.logIn(user.email, user.password)).body.data!.logIn;
      await requestReset(user.email);
      const mail = await sink.waitForMail(user.email, /Reset your password/);
      expect(mail.text).toMatch(/works once, for 30 minutes/);
      const token = tokenFromMail(mail, LINK_BASE, "reset-password");

      const weak = await resetPassword(token, "password123");
      expect(weak.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "input.newPassword",
      });
      const reset = await resetPassword(token, "a fresh passphrase now");
      const session = reset.body.data?.resetPassword;
      expect(session).toMatchObject({
        user: { id: user.userId },
        knownDeviceToken: expect.stringMatching(/^kd_/),
      });
      expect((await client.me(session!.accessToken)).body.data).toEqual({ me: { id: user.userId } });

      for (const old of [user, other]) {
        expect((await client.me(old.accessToken)).status).toBe(401);
        expect(errorCode(await client.refresh(old.refreshToken))).toBe("UNAUTHENTICATED");
      }
      expect(errorCode(await client.logIn(user.email, user.password))).toBe("INVALID_CREDENTIALS");
      const withOldDevice = (await client.logIn(user.email, "a fresh passphrase now", user.knownDeviceToken))
        .body.data!.logIn;
      expect(withOldDevice.knownDeviceToken).not.toBe(user.knownDeviceToken); // a stranger again: a new token
      const reused = await resetPassword(token, "yet another passphrase");
      expect(reused.body.errors?.[0]?.extensions).toMatchObject({ code: "INVALID_TOKEN", reason: "used" });
    });

    it("should refuse an expired token, another purpose's token, and a link sent before the address changed", async () => {
      const user = await client.signUp();
      await requestReset(user.email);
      const token = tokenFromMail(
        await sink.waitForMail(user.email, /Reset your password/),
        LINK_BASE,
        "reset-password",
      );
      // Thirty minutes later (the expiry moved back rather than waiting).
      await dbs.users.accountToken.updateMany({
        where: { userId: user.userId, purpose: "RESET_PASSWORD" },
        data: { expiresAt: new Date(Date.now() - 1000) },
      });
      const expired = await resetPassword(token, "a fresh passphrase now");
      expect(expired.body.errors?.[0]?.extensions).toMatchObject({
        code: "INVALID_TOKEN",
        reason: "expired",
      });
      const asVerification = await client.verifyEmail(token);
      expect(asVerification.body.errors?.[0]?.extensions).toMatchObject({
        code: "INVALID_TOKEN",
        reason: "invalid",
      });
      expect(errorCode(await client.logIn(user.email, user.password))).toBeUndefined();
    });
  });

  describe("email change", () => {
    it("should change the address only through the new address's link, and tell the old one", async () => {
      const user = await client.signUp();
      const target = newAddress();
      expect(errorCode(await requestEmailChange(user.accessToken, target, "not my password"))).toBe(
        "INVALID_CREDENTIALS",
      );
      expect((await requestEmailChange(user.accessToken, target, user.password)).body.data).toEqual({
        requestEmailChange: true,
      });
      const confirm = await sink.waitForMail(target, /Confirm your new email address/);
      // Nothing changed yet: the old address still logs in.
      expect(errorCode(await client.logIn(user.email, user.password))).toBeUndefined();

      const stranger = await client.signUp();
      const token = tokenFromMail(confirm, LINK_BASE, "confirm-email");
      const foreign = await confirmEmailChange(stranger.accessToken, token);
      expect(foreign.body.errors?.[0]?.extensions).toMatchObject({
        code: "INVALID_TOKEN",
        reason: "invalid",
      });

      expect((await confirmEmailChange(user.accessToken, token)).body.data).toEqual({
        confirmEmailChange: true,
      });
      const me = await client.request<{ me: { email: string } }>(`{ me { email } }`, {}, user.accessToken);
      expect(me.body.data?.me.email).toBe(target);
      const notice = await sink.waitForMail(user.email.toLowerCase(), /was changed/);
      expect(notice.text).not.toContain(target); // masked: a***@example.test
      expect(notice.text).toContain(`${target[0]}***@example.test`);
      expect(errorCode(await client.logIn(target, user.password))).toBeUndefined();
      expect(errorCode(await client.logIn(user.email, user.password))).toBe("INVALID_CREDENTIALS");
      const twice = await confirmEmailChange(user.accessToken, token);
      expect(twice.body.errors?.[0]?.extensions).toMatchObject({ code: "INVALID_TOKEN", reason: "used" });
    });

    it("should answer true for a taken address and tell that address, changing nothing", async () => {
      const [user, other] = [await client.signUp(), await client.signUp()];
      expect((await requestEmailChange(user.accessToken, other.email, user.password)).body.data).toEqual({
        requestEmailChange: true,
      });
      const notice = await sink.waitForMail(other.email, /Someone tried to use your email address/);
      expect(notice.text).not.toContain("token=");
      expect(errorCode(await client.logIn(user.email, user.password))).toBeUndefined();
    });
  });

  describe("delivery", () => {
    it("should retry a mail the SMTP server refuses for now until it is accepted", async () => {
      const user = await client.signUp();
      const refusalsBefore = sink.refusals;
      sink.refuseNext(2, 451);
      await requestReset(user.email);
      await sink.waitForMail(user.email, /Reset your password/);
      expect(sink.refusals - refusalsBefore).toBe(2);
    });

    it("should answer sign-up while the SMTP server is unreachable, and deliver once it is back", async () => {
      await worker!.stop();
      worker = await startUsersWorker(`smtp://127.0.0.1:${await closedPort()}`);
      const email = newAddress();
      const answer = await signUp(email);
      expect(answer.body).toEqual({ data: { signUp: { status: "VERIFICATION_PENDING", email } } });

      const queue = new Queue(MAIL_QUEUE, { connection: redisOptions(loadRedisTarget(testEnv())), prefix });
      try {
        // The mail is kept and tried again (with backoff), not lost.
        await waitFor("two failed tries", async () => {
          const jobs = await queue.getJobs(["delayed", "wait", "active", "prioritized"]);
          return jobs.some((job) => job.data.to === email && job.attemptsMade >= 2);
        });
      } finally {
        await queue.close();
      }
      await worker!.stop();
      worker = await startUsersWorker(sink.url);
      const mail = await sink.waitForMail(email, /Confirm your email address/);
      expect(
        (await client.verifyEmail(tokenFromMail(mail, LINK_BASE, "verify-email"))).body.errors,
      ).toBeUndefined();
    });
  });

  describe("password guessing without lock-outs", () => {
    it("should allow 10 guesses an hour from rotating addresses while the owner's known phone signs in", async () => {
      const owner = await client.signUp();
      const ownerPhone = randomClientIp();
      const attacker = await client.signUp(); // their own account: its known-device token proves nothing about the owner's
      const outcomes: Array<string | undefined> = [];
      for (let guess = 1; guess <= 25; guess += 1) {
        const tokenToTry = guess % 2 === 0 ? attacker.knownDeviceToken : undefined;
        outcomes.push(
          errorCode(await client.logIn(owner.email, `guess number ${guess}!`, tokenToTry, randomClientIp())),
        );
        if (guess % 5 === 0) {
          // The owner, on the phone that signed in before, in the middle of the attack.
          const signedIn = await client.logIn(
            owner.email,
            owner.password,
            owner.knownDeviceToken,
            ownerPhone,
          );
          expect({ guess, errors: signedIn.body.errors }).toEqual({ guess, errors: undefined });
        }
      }
      expect(outcomes.filter((code) => code === "INVALID_CREDENTIALS")).toHaveLength(10);
      expect(outcomes.slice(10)).toEqual(Array(15).fill("RATE_LIMITED"));

      // A new phone of the owner's waits like the attacker...
      expect(errorCode(await client.logIn(owner.email, owner.password, undefined, randomClientIp()))).toBe(
        "RATE_LIMITED",
      );
      // ...until the owner resets the password by mail: that phone is then signed in and known.
      await requestReset(owner.email);
      const token = tokenFromMail(
        await sink.waitForMail(owner.email, /Reset your password/),
        LINK_BASE,
        "reset-password",
      );
      const reset = (await resetPassword(token, "the owner's new passphrase")).body.data!.resetPassword;
      const again = await client.logIn(
        owner.email,
        "the owner's new passphrase",
        reset.knownDeviceToken!,
        randomClientIp(),
      );
      expect(again.body.errors).toBeUndefined();
    });

    it("should limit guesses from a known phone too (a stolen phone), without touching the owner's other phones", async () => {
      const owner = await client.signUp();
      const secondPhone = (await client.logIn(owner.email, owner.password, undefined, randomClientIp())).body
        .data!.logIn.knownDeviceToken!;
      const codes: Array<string | undefined> = [];
      for (let guess = 1; guess <= 11; guess += 1) {
        codes.push(
          errorCode(await client.logIn(owner.email, `stolen phone guess ${guess}`, owner.knownDeviceToken)),
        );
      }
      expect(codes).toEqual([...Array(10).fill("INVALID_CREDENTIALS"), "RATE_LIMITED"]);
      expect(errorCode(await client.logIn(owner.email, owner.password, secondPhone))).toBeUndefined();
    });
  });

  describe("bad input to the new mutations gets a typed error", () => {
    const validShapedToken = () => `at_${randomBytes(32).toString("base64url")}`;
    const tokenCases: Array<[string, () => string, string, Record<string, unknown>]> = [
      ["an unknown token", validShapedToken, "INVALID_TOKEN", { reason: "invalid" }],
      ["an empty token", () => "", "BAD_USER_INPUT", {}],
      ["an oversized token", () => `at_${"A".repeat(10_000)}`, "BAD_USER_INPUT", {}],
      ["SQL in a token", () => "at_' OR '1'='1' --", "INVALID_TOKEN", { reason: "invalid" }],
      [
        "control characters in a token",
        () => "at_\u0000\u202E\n../../etc/passwd",
        "INVALID_TOKEN",
        { reason: "invalid" },
      ],
      [
        "a refresh token as a link token",
        () => `rt_${randomBytes(32).toString("base64url")}`,
        "INVALID_TOKEN",
        { reason: "invalid" },
      ],
    ];

    it.each(tokenCases)("verifyEmail should refuse %s", async (_name, token, code, extra) => {
      const response = await client.verifyEmail(token());
      expect(response.body.data ?? null).toBeNull();
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, ...extra });
    });

    it.each(tokenCases)("resetPassword should refuse %s", async (_name, token, code, extra) => {
      const response = await resetPassword(token(), "a perfectly good passphrase");
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, ...extra });
    });

    it.each(tokenCases)("confirmEmailChange should refuse %s", async (_name, token, code, extra) => {
      const user = await client.signUp();
      const response = await confirmEmailChange(user.accessToken, token());
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code, ...extra });
    });

    it("should refuse missing or mistyped arguments before any resolver runs", async () => {
      for (const operation of [
        `mutation { verifyEmail { accessToken } }`,
        `mutation { verifyEmail(token: 42) { accessToken } }`,
        `mutation { resetPassword(input: { token: "at_x" }) { accessToken } }`,
        `mutation { requestPasswordReset }`,
        `mutation { requestEmailChange(input: { newEmail: "a@b.co" }) }`,
        `mutation { confirmEmailChange }`,
        `mutation { logIn(input: { email: "a@b.co", password: "x", knownDeviceToken: 7 }) { accessToken } }`,
      ]) {
        expect({ operation, code: errorCode(await client.request(operation)) }).toEqual({
          operation,
          code: "GRAPHQL_VALIDATION_FAILED",
        });
      }
    });

    it("should refuse malformed, oversized and hostile addresses with the field named", async () => {
      const user = await client.signUp();
      for (const email of [
        "not-an-email",
        "",
        `${"a".repeat(250)}@example.test`,
        "eve\u202E@example.test",
        "a@b.co\r\nBcc: victim@example.test",
      ]) {
        const reset = await requestReset(email);
        expect({ email, extensions: reset.body.errors?.[0]?.extensions }).toMatchObject({
          email,
          extensions: { code: "BAD_USER_INPUT", field: "email" },
        });
        const change = await requestEmailChange(user.accessToken, email, user.password);
        expect({ email, extensions: change.body.errors?.[0]?.extensions }).toMatchObject({
          email,
          extensions: { code: "BAD_USER_INPUT", field: "input.newEmail" },
        });
      }
      const same = await requestEmailChange(user.accessToken, user.email, user.password);
      expect(same.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "input.newEmail",
      });
    });

    it("should need a session for email changes", async () => {
      expect(errorCode(await requestEmailChange("", newAddress(), PASSWORD))).toBe("UNAUTHENTICATED");
      expect(errorCode(await client.request(`mutation { confirmEmailChange(token: "at_x") }`))).toBe(
        "UNAUTHENTICATED",
      );
    });

    it("should refuse an oversized known-device token and treat a forged one as an unknown phone", async () => {
      const user = await client.signUp();
      const oversized = await client.logIn(user.email, user.password, "kd_".padEnd(129, "x"));
      expect(oversized.body.errors?.[0]?.extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        field: "input.knownDeviceToken",
      });
      for (const forged of ["kd_' OR 1=1 --", "\u0000", `kd_${randomBytes(32).toString("base64url")}`]) {
        const login = await client.logIn(user.email, user.password, forged);
        expect(login.body.data?.logIn.knownDeviceToken).toMatch(/^kd_/);
        expect(login.body.data?.logIn.knownDeviceToken).not.toBe(forged);
      }
    });

    it("should limit reset requests per address, whatever the addresses asked for", async () => {
      const address = randomClientIp();
      const codes: Array<string | undefined> = [];
      for (let i = 0; i < 11; i += 1) codes.push(errorCode(await requestReset(newAddress(), address)));
      expect(codes).toEqual([...Array(10).fill(undefined), "RATE_LIMITED"]);
    });
  });
});
