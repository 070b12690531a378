import { randomUUID } from "node:crypto";
import { deliver, type DeliveryDeps, type DeliveryOutcome } from "@hv/users/src/push/deliver";
import type { PushJob } from "@hv/users/src/push/jobs";
import { createPushMetrics } from "@hv/users/src/push/metrics";
import { apnsProvider } from "@hv/users/src/push/providers/apns";
import { fcmProvider } from "@hv/users/src/push/providers/fcm";
import { capturingLogger } from "../../support/log-capture";
import { fcmError } from "./fake-providers";
import { APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, messageEvent, usePushWorker } from "./harness";

const push = usePushWorker();
const MINUTE = 60_000;

afterEach(() => push.setNow(undefined));

describe("push worker: message and match notifications through FCM and APNs", () => {
  it("should send a message notification with the exact FCM and APNs requests, and count it", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    const sentFcm = await push.metric("push_notifications_sent_total", { provider: "fcm" });
    const sentApns = await push.metric("push_notifications_sent_total", { provider: "apns" });

    const event = messageEvent(sender, [[recipient, 3]]);
    // Sent 10 s after the message: 14 min 50 s of the 15-minute max age are left.
    push.setNow(new Date(Date.parse(event.sentAt) + 10_000));
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ sent: 2, pruned: 0, rejected: 0, retrying: 0 });

    // OAuth 2.0 JWT grant, signed with the service account's key.
    const grant = push.fcm.tokenRequests.at(-1)!;
    expect(grant).toMatchObject({
      grantType: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      signatureValid: true,
      header: { alg: "RS256" },
    });
    expect(grant.claims).toMatchObject({
      iss: push.serviceAccount.client_email,
      scope: "https://www.googleapis.com/auth/firebase.messaging",
      aud: "https://oauth2.googleapis.com/token",
    });
    const [fcmSend, ...moreFcm] = push.fcm.sendsTo(android.token);
    expect(moreFcm).toHaveLength(0);
    expect(fcmSend!.path).toBe(`/v1/projects/${push.serviceAccount.project_id}/messages:send`);
    expect(push.fcm.issuedTokens).toContain(fcmSend!.authorization?.replace(/^Bearer /, ""));
    expect(fcmSend!.contentType).toMatch(/^application\/json/);
    expect(fcmSend!.body).toEqual({
      message: {
        token: android.token,
        notification: { title: "Ada", body: "hello there" },
        data: {
          kind: "message",
          conversationId: event.conversationId,
          conversationKind: "DIRECT",
          messageId: event.messageId,
          seq: "7",
          senderId: sender,
        },
        android: {
          priority: "HIGH",
          ttl: "890s",
          collapse_key: event.conversationId,
          notification: { tag: event.conversationId, notification_count: 3 },
        },
      },
    });

    const [apnsSend, ...moreApns] = push.apns.sendsTo(ios.token);
    expect(moreApns).toHaveLength(0);
    expect(apnsSend!.method).toBe("POST");
    expect(apnsSend!.headers).toMatchObject({
      "apns-topic": APNS_TOPIC,
      "apns-push-type": "alert",
      "apns-priority": "10",
      "apns-collapse-id": event.conversationId,
      // Apple drops it if the phone is unreachable until the message is 15 minutes old.
      "apns-expiration": String(Math.floor((Date.parse(event.sentAt) + 15 * MINUTE) / 1000)),
    });
    expect(apnsSend!.headers.authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(apnsSend!.jwtValid).toBe(true);
    expect(apnsSend!.jwtHeader).toMatchObject({ alg: "ES256", kid: APNS_KEY_ID });
    expect(apnsSend!.jwtClaims).toMatchObject({ iss: APNS_TEAM_ID, iat: expect.any(Number) });
    // A visible alert (shown even when the app was force-quit), not a content-available push.
    expect(apnsSend!.payload).toEqual({
      aps: {
        alert: { title: "Ada", body: "hello there" },
        badge: 3,
        sound: "default",
        "thread-id": event.conversationId,
      },
      kind: "message",
      conversationId: event.conversationId,
      conversationKind: "DIRECT",
      messageId: event.messageId,
      seq: "7",
      senderId: sender,
    });

    const deliveries = await push.db.pushDelivery.findMany({
      where: { subjectKey: `message:${event.messageId}` },
    });
    expect(deliveries.map((row) => [row.deviceId, row.outcome]).sort()).toEqual(
      [
        [android.id, "SENT"],
        [ios.id, "SENT"],
      ].sort(),
    );
    expect(await push.metric("push_notifications_sent_total", { provider: "fcm" })).toBe(sentFcm + 1);
    expect(await push.metric("push_notifications_sent_total", { provider: "apns" })).toBe(sentApns + 1);
  });

  it("should notify each device once when the same message arrives twice, by the same event or a second trigger", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    await push.waitForJobs(`message:${event.messageId}`, 1);
    const skipped = await push.metric("push_notifications_skipped_total", { reason: "already_sent" });
    expect(await push.pushJobCount(`message:${event.messageId}`)).toBe(1);
    // A second trigger for the same message (another event id) while the first job is kept: once
    // the consumer has handled it, the queue still holds one job for the message (BullMQ dropped
    // the second by its id).
    const second = await push.publish("message.created", {
      ...event,
      recipients: [{ userId: recipient, unreadCount: 2 }],
    });
    await push.waitForEvent(second);
    expect(await push.pushJobCount(`message:${event.messageId}`)).toBe(1);
    expect(
      push.finished.filter((entry) => entry.job.subjectKey === `message:${event.messageId}`),
    ).toHaveLength(1);
    // The same event again after the job is gone (its retention over): a new job runs, and the
    // delivery rows make it send nothing.
    await push.removeJob(`message:${event.messageId}`, recipient);
    await push.publish("message.created", event);
    const [, again] = await push.waitForJobs(`message:${event.messageId}`, 2);
    expect(again?.outcome).toMatchObject({ skipped: "already_sent", sent: 0 });
    expect(await push.metric("push_notifications_skipped_total", { reason: "already_sent" })).toBe(
      skipped + 1,
    );
    expect(
      push.fcm
        .sendsTo(android.token)
        .filter((send) => send.body.message?.data?.messageId === event.messageId),
    ).toHaveLength(1);
    expect(
      push.apns.sendsTo(ios.token).filter((send) => send.payload.messageId === event.messageId),
    ).toHaveLength(1);
  });

  it("should notify both members of a new match", async () => {
    const ada = await push.person("Ada");
    const bo = await push.person("Bo");
    const adaPhone = await push.device(ada, "IOS");
    const boPhone = await push.device(bo, "ANDROID");
    const matchId = randomUUID();
    await push.publish("match.created", { matchId, userIds: [ada, bo] });
    await push.waitForJobs(`match:${matchId}`, 2);
    const [toAda] = push.apns.sendsTo(adaPhone.token);
    expect(toAda?.payload.aps).toEqual({
      alert: { title: "New match", body: "You and Bo liked each other" },
      sound: "default",
      "thread-id": `match-${matchId}`,
    });
    expect(toAda?.headers["apns-collapse-id"]).toBe(`match-${matchId}`);
    const [toBo] = push.fcm.sendsTo(boPhone.token);
    expect(toBo?.body.message?.notification).toEqual({
      title: "New match",
      body: "You and Ada liked each other",
    });
    expect(toBo?.body.message?.data).toEqual({ kind: "match", matchId, userId: ada });
  });
});

describe("push worker: provider errors", () => {
  it("should prune devices whose tokens the providers report unregistered", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const gone = await push.device(recipient, "IOS");
    const expired = await push.device(recipient, "IOS");
    push.fcm.script(android.token, [fcmError(404, "NOT_FOUND", "UNREGISTERED")]);
    push.apns.script(gone.token, [{ status: 410, body: { reason: "Unregistered", timestamp: Date.now() } }]);
    push.apns.script(expired.token, [
      { status: 410, body: { reason: "ExpiredToken", timestamp: Date.now() } },
    ]);
    const prunedFcm = await push.metric("push_tokens_pruned_total", { provider: "fcm" });
    const prunedApns = await push.metric("push_tokens_pruned_total", { provider: "apns" });

    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ pruned: 3, sent: 0 });
    expect(await push.db.device.count({ where: { userId: recipient } })).toBe(0);
    expect(await push.metric("push_tokens_pruned_total", { provider: "fcm" })).toBe(prunedFcm + 1);
    expect(await push.metric("push_tokens_pruned_total", { provider: "apns" })).toBe(prunedApns + 2);
    // Each was tried once: a dead token is not retried.
    expect(push.fcm.sendsTo(android.token)).toHaveLength(1);
    expect(push.apns.sendsTo(gone.token)).toHaveLength(1);
  });

  it("should keep devices refused for other reasons (plain 404, another project, another topic, bad token), count and log them", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const notFound = await push.device(recipient, "ANDROID");
    const otherProject = await push.device(recipient, "ANDROID");
    const otherTopic = await push.device(recipient, "IOS");
    const badToken = await push.device(recipient, "IOS");
    // A 404 without FCM's UNREGISTERED detail (a proxy, a wrong project or URL) says nothing about the token.
    push.fcm.script(notFound.token, [
      {
        status: 404,
        body: { error: { code: 404, message: "Requested entity was not found.", status: "NOT_FOUND" } },
      },
    ]);
    push.fcm.script(otherProject.token, [fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")]);
    push.apns.script(otherTopic.token, [{ status: 400, body: { reason: "DeviceTokenNotForTopic" } }]);
    push.apns.script(badToken.token, [{ status: 400, body: { reason: "BadDeviceToken" } }]);
    const pruned =
      (await push.metric("push_tokens_pruned_total", { provider: "fcm" })) +
      (await push.metric("push_tokens_pruned_total", { provider: "apns" }));
    const failedFcm = await push.metric("push_notifications_failed_total", {
      provider: "fcm",
      reason: "rejected",
    });
    const failedApns = await push.metric("push_notifications_failed_total", {
      provider: "apns",
      reason: "rejected",
    });

    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect((done?.outcome as Error).name).toBe("UnrecoverableError");
    expect((await push.jobOf(`message:${event.messageId}`, recipient)).attemptsMade).toBe(1);
    expect(
      await push.db.device.count({
        where: { id: { in: [notFound.id, otherProject.id, otherTopic.id, badToken.id] } },
      }),
    ).toBe(4);
    const rows = await push.db.pushDelivery.findMany({ where: { subjectKey: `message:${event.messageId}` } });
    expect(rows.map((row) => row.outcome)).toEqual(["REJECTED", "REJECTED", "REJECTED", "REJECTED"]);
    expect(
      (await push.metric("push_tokens_pruned_total", { provider: "fcm" })) +
        (await push.metric("push_tokens_pruned_total", { provider: "apns" })),
    ).toBe(pruned);
    expect(
      await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "rejected" }),
    ).toBe(failedFcm + 2);
    expect(
      await push.metric("push_notifications_failed_total", { provider: "apns", reason: "rejected" }),
    ).toBe(failedApns + 2);
    const warnings = push.logs.filter(
      (line) => line.level === "warn" && line.subjectKey === `message:${event.messageId}`,
    );
    expect(warnings.map((line) => line.reason).sort()).toEqual([
      "400 BadDeviceToken",
      "400 DeviceTokenNotForTopic",
      "403 SENDER_ID_MISMATCH",
      "404 NOT_FOUND",
    ]);
  });

  it("should retry an FCM 403 PERMISSION_DENIED (a configuration problem that gets fixed) and then send", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    push.fcm.script(android.token, [fcmError(403, "PERMISSION_DENIED", "PERMISSION_DENIED")]);
    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ sent: 1 });
    expect(push.fcm.sendsTo(android.token).map((send) => send.status)).toEqual([403, 200]);
    expect(await push.db.device.count({ where: { id: android.id } })).toBe(1);
  });

  it("should retry 429 and 503 with backoff (respecting Retry-After) and then send, once per device", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    push.fcm.script(android.token, [
      fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", { "retry-after": "1" }),
    ]);
    push.apns.script(ios.token, [
      { status: 503, body: { reason: "ServiceUnavailable" } },
      { status: 429, body: { reason: "TooManyRequests" } },
    ]);
    const retriedFcm = await push.metric("push_notifications_retried_total", { provider: "fcm" });
    const retriedApns = await push.metric("push_notifications_retried_total", { provider: "apns" });

    const event = messageEvent(sender, [[recipient, 4]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ retrying: 0 });
    expect(push.fcm.sendsTo(android.token).map((send) => send.status)).toEqual([429, 200]);
    expect(push.apns.sendsTo(ios.token).map((send) => send.status)).toEqual([503, 429, 200]);
    // Three tries of one job: the third sent only to the iOS device (Android's was recorded as sent).
    // The first wait was FCM's Retry-After (1 s) although the backoff base is 50 ms.
    const job = await push.jobOf(`message:${event.messageId}`, recipient);
    expect(job.attemptsMade).toBe(3);
    expect(job.delays).toHaveLength(2);
    expect(job.delays[0]).toBeGreaterThanOrEqual(1000);
    expect(job.delays[1]).toBeLessThan(1000);
    expect(await push.metric("push_notifications_retried_total", { provider: "fcm" })).toBe(retriedFcm + 1);
    expect(await push.metric("push_notifications_retried_total", { provider: "apns" })).toBe(retriedApns + 2);
    const rows = await push.db.pushDelivery.findMany({ where: { subjectKey: `message:${event.messageId}` } });
    expect(rows.map((row) => row.outcome)).toEqual(["SENT", "SENT"]);
  });

  it("should fail a notification the provider refuses as malformed (400) without retrying it", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    push.fcm.script(android.token, [fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")]);
    push.apns.script(ios.token, [{ status: 400, body: { reason: "PayloadEmpty" } }]);
    const failedFcm = await push.metric("push_notifications_failed_total", {
      provider: "fcm",
      reason: "rejected",
    });
    const failedApns = await push.metric("push_notifications_failed_total", {
      provider: "apns",
      reason: "rejected",
    });

    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toBeInstanceOf(Error);
    expect((done?.outcome as Error).name).toBe("UnrecoverableError");
    const job = await push.jobOf(`message:${event.messageId}`, recipient);
    expect(job.attemptsMade).toBe(1);
    expect(push.fcm.sendsTo(android.token)).toHaveLength(1);
    expect(push.apns.sendsTo(ios.token)).toHaveLength(1);
    expect(await push.db.device.count({ where: { userId: recipient } })).toBe(2); // not pruned
    expect(
      await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "rejected" }),
    ).toBe(failedFcm + 1);
    expect(
      await push.metric("push_notifications_failed_total", { provider: "apns", reason: "rejected" }),
    ).toBe(failedApns + 1);
  });

  it("should give up after the last attempt and count the notification failed", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const unavailable = fcmError(503, "UNAVAILABLE", "UNAVAILABLE");
    push.fcm.script(android.token, [unavailable, unavailable, unavailable, unavailable]);
    const exhausted = await push.metric("push_notifications_failed_total", {
      provider: "fcm",
      reason: "exhausted",
    });
    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toBeInstanceOf(Error);
    expect(push.fcm.sendsTo(android.token)).toHaveLength(3); // PUSH_MAX_ATTEMPTS
    expect(
      await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "exhausted" }),
    ).toBe(exhausted + 1);
    // Given up: no claim is left behind.
    expect(await push.db.pushDelivery.count({ where: { subjectKey: `message:${event.messageId}` } })).toBe(0);
  });

  it("should count database errors, and a job that used its tries up on them, as failed", async () => {
    const sender = await push.person("Ada");
    const database = await push.metric("push_notifications_failed_total", {
      provider: "none",
      reason: "database",
    });
    const exhausted = await push.metric("push_notifications_failed_total", {
      provider: "none",
      reason: "exhausted",
    });
    // A job the database refuses on every try (its recipient id is not a uuid).
    const subjectKey = `message:${randomUUID()}`;
    await push.addJob({
      kind: "message",
      subjectKey,
      recipientId: "not-a-uuid",
      actorId: sender,
      occurredAt: new Date().toISOString(),
      message: {
        messageId: randomUUID(),
        conversationId: randomUUID(),
        conversationKind: "DIRECT",
        seq: 1,
        preview: "hi",
        unreadCount: 1,
      },
    });
    const [done] = await push.waitForJobs(subjectKey, 1);
    expect(done?.outcome).toBeInstanceOf(Error);
    expect(
      await push.metric("push_notifications_failed_total", { provider: "none", reason: "database" }),
    ).toBe(database + 3);
    expect(
      await push.metric("push_notifications_failed_total", { provider: "none", reason: "exhausted" }),
    ).toBe(exhausted + 1);
  });
});

describe("push worker: respecting the person", () => {
  async function pair() {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    return { sender, recipient, android, ios };
  }
  const sendsFor = (devices: { android: { token: string }; ios: { token: string } }) =>
    push.fcm.sendsTo(devices.android.token).length + push.apns.sendsTo(devices.ios.token).length;

  it("should not notify during the recipient's quiet hours in their time zone, across a daylight-saving change", async () => {
    const people = await pair();
    // 22:00–07:00 in Berlin. On 2026-10-25 clocks went back from CEST (UTC+2) to CET (UTC+1) at 01:00 UTC.
    await push.db.notificationSettings.create({
      data: { userId: people.recipient, timeZone: "Europe/Berlin", quietStart: 22 * 60, quietEnd: 7 * 60 },
    });
    const skipped = await push.metric("push_notifications_skipped_total", { reason: "quiet_hours" });
    const at = (iso: string) => {
      push.setNow(new Date(iso));
      return messageEvent(people.sender, [[people.recipient, 1]], {
        sentAt: new Date(Date.parse(iso) - 5_000).toISOString(),
      });
    };
    const event = at("2026-10-25T05:59:00Z"); // 06:59 CET (07:59 if the summer offset were kept)
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "quiet_hours", sent: 0 });
    expect(sendsFor(people)).toBe(0);
    expect(await push.metric("push_notifications_skipped_total", { reason: "quiet_hours" })).toBe(
      skipped + 1,
    );

    const next = at("2026-10-25T06:00:00Z"); // 07:00 CET: quiet hours are over
    await push.publish("message.created", next);
    const [sent] = await push.waitForJobs(`message:${next.messageId}`, 1);
    expect(sent?.outcome).toMatchObject({ sent: 2 });
  });

  it("should drop a notification whose message is older than the max age, sending nothing", async () => {
    const people = await pair();
    const skipped = await push.metric("push_notifications_skipped_total", { reason: "expired" });
    const stale = messageEvent(people.sender, [[people.recipient, 1]], {
      sentAt: new Date(Date.now() - 16 * MINUTE).toISOString(),
    });
    await push.publish("message.created", stale);
    const [done] = await push.waitForJobs(`message:${stale.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "expired", sent: 0 });
    expect(sendsFor(people)).toBe(0);
    expect(await push.metric("push_notifications_skipped_total", { reason: "expired" })).toBe(skipped + 1);

    const fresh = messageEvent(people.sender, [[people.recipient, 1]], {
      sentAt: new Date(Date.now() - 14 * MINUTE).toISOString(),
    });
    await push.publish("message.created", fresh);
    const [sent] = await push.waitForJobs(`message:${fresh.messageId}`, 1);
    expect(sent?.outcome).toMatchObject({ sent: 2 });
  });

  it("should not notify devices of revoked or expired sessions", async () => {
    const people = await pair();
    const signedOut = await push.device(people.recipient, "ANDROID", { revokedAt: new Date() });
    const expired = await push.device(people.recipient, "IOS", { expiresAt: new Date(Date.now() - MINUTE) });
    const event = messageEvent(people.sender, [[people.recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ sent: 2 });
    expect(sendsFor(people)).toBe(2);
    expect(push.fcm.sendsTo(signedOut.token)).toHaveLength(0);
    expect(push.apns.sendsTo(expired.token)).toHaveLength(0);
  });

  it("should not notify about a kind the recipient turned off, and still about the others", async () => {
    const people = await pair();
    await push.db.notificationSettings.create({ data: { userId: people.recipient, messages: false } });
    const event = messageEvent(people.sender, [[people.recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "preference_off" });
    expect(sendsFor(people)).toBe(0);

    const matchId = randomUUID();
    await push.publish("match.created", { matchId, userIds: [people.sender, people.recipient] });
    const jobs = await push.waitForJobs(`match:${matchId}`, 2);
    expect(jobs.find((entry) => entry.job.recipientId === people.recipient)?.outcome).toMatchObject({
      sent: 2,
    });
  });

  it("should hide message text when the recipient turned previews off", async () => {
    const people = await pair();
    await push.db.notificationSettings.create({ data: { userId: people.recipient, messagePreviews: false } });
    const event = messageEvent(people.sender, [[people.recipient, 1]], { preview: "something private" });
    await push.publish("message.created", event);
    await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(push.fcm.sendsTo(people.android.token)[0]?.body.message?.notification).toEqual({
      title: "Ada",
      body: "New message",
    });
    expect(push.apns.sendsTo(people.ios.token)[0]?.payload.aps.alert).toEqual({
      title: "Ada",
      body: "New message",
    });
  });

  it("should never notify about someone blocked either way, checked at send time", async () => {
    const people = await pair();
    // The event says notify (Chat decided before the block); the block is there when the job runs.
    await push.db.block.create({ data: { blockerId: people.recipient, blockedId: people.sender } });
    const event = messageEvent(people.sender, [[people.recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "blocked" });

    const other = await pair();
    await push.db.block.create({ data: { blockerId: other.sender, blockedId: other.recipient } });
    const matchId = randomUUID();
    await push.publish("match.created", { matchId, userIds: [other.sender, other.recipient] });
    const jobs = await push.waitForJobs(`match:${matchId}`, 2);
    expect(jobs.map((entry) => (entry.outcome as { skipped?: string }).skipped)).toEqual([
      "blocked",
      "blocked",
    ]);
    expect(sendsFor(people) + sendsFor(other)).toBe(0);
  });

  it("should never notify the sender about their own message, nor anyone about a banned sender", async () => {
    const people = await pair();
    const senderPhone = await push.device(people.sender, "ANDROID");
    const event = messageEvent(people.sender, [[people.sender, 0]]);
    await push.waitForEvent(await push.publish("message.created", event));
    expect(await push.pushJobCount(`message:${event.messageId}`)).toBe(0);
    expect(push.fcm.sendsTo(senderPhone.token)).toHaveLength(0);

    await push.db.user.update({ where: { id: people.sender }, data: { bannedAt: new Date() } });
    const after = messageEvent(people.sender, [[people.recipient, 2]]);
    await push.publish("message.created", after);
    const [done] = await push.waitForJobs(`message:${after.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "actor_gone" });
  });
});

describe("push worker: one send per device when runs of a job overlap", () => {
  const providers = () => ({ ANDROID: fcmProvider(push.config.fcm!), IOS: apnsProvider(push.config.apns!) });
  const depsWith = (
    opened: ReturnType<typeof providers>,
    logger = capturingLogger("push-test").logger,
  ): DeliveryDeps => ({
    db: push.db,
    providers: opened,
    metrics: createPushMetrics(),
    logger,
    maxAttempts: 3,
    maxAgeMs: { message: 15 * MINUTE, match: 1440 * MINUTE },
  });
  const messageJob = (sender: string, recipient: string): PushJob => ({
    kind: "message",
    subjectKey: `message:${randomUUID()}`,
    recipientId: recipient,
    actorId: sender,
    occurredAt: new Date().toISOString(),
    message: {
      messageId: randomUUID(),
      conversationId: randomUUID(),
      conversationKind: "DIRECT",
      seq: 1,
      preview: "hi",
      unreadCount: 1,
    },
  });

  it("should let only one of two simultaneous runs of the same job send", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    // Slow providers: the first run is still sending when the second looks.
    push.fcm.script(android.token, [{ status: 200, delayMs: 300 }]);
    push.apns.script(ios.token, [{ status: 200, delayMs: 300 }]);
    const opened = providers();
    try {
      const job = messageJob(sender, recipient);
      const runs = await Promise.allSettled([
        deliver(job, 1, depsWith(opened)),
        deliver(job, 1, depsWith(opened)),
      ]);
      expect(push.fcm.sendsTo(android.token)).toHaveLength(1);
      expect(push.apns.sendsTo(ios.token)).toHaveLength(1);
      const sent = runs
        .filter((run) => run.status === "fulfilled")
        .map((run) => (run as PromiseFulfilledResult<DeliveryOutcome>).value);
      const waiting = runs
        .filter((run) => run.status === "rejected")
        .map((run) => (run as PromiseRejectedResult).reason as Error);
      expect(sent.map((outcome) => outcome.sent)).toEqual([2]);
      // The other run found both devices claimed: it asks to be tried again (the first might fail).
      expect(waiting.map((error) => error.name)).toEqual(["RetryLaterError"]);
      const rows = await push.db.pushDelivery.findMany({ where: { subjectKey: job.subjectKey } });
      expect(rows.map((row) => row.outcome)).toEqual(["SENT", "SENT"]);
      // And its next try finds both sent.
      expect(await deliver(job, 2, depsWith(opened))).toMatchObject({ skipped: "already_sent", sent: 0 });
      expect(push.fcm.sendsTo(android.token)).toHaveLength(1);
    } finally {
      await Promise.all(Object.values(opened).map((provider) => provider.close()));
    }
  });

  it("should take over a claim older than the lease, and leave a fresh one alone", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    const job = messageJob(sender, recipient);
    // A run that died holding the Android device's claim three minutes ago; one that is sending to the iPhone now.
    await push.db.pushDelivery.createMany({
      data: [
        {
          subjectKey: job.subjectKey,
          deviceId: android.id,
          outcome: "PENDING",
          claimId: randomUUID(),
          createdAt: new Date(Date.now() - 3 * MINUTE),
        },
        { subjectKey: job.subjectKey, deviceId: ios.id, outcome: "PENDING", claimId: randomUUID() },
      ],
    });
    const opened = providers();
    try {
      await expect(deliver(job, 1, depsWith(opened))).rejects.toMatchObject({ name: "RetryLaterError" });
      expect(push.fcm.sendsTo(android.token)).toHaveLength(1);
      expect(push.apns.sendsTo(ios.token)).toHaveLength(0);
      const rows = await push.db.pushDelivery.findMany({
        where: { subjectKey: job.subjectKey },
        orderBy: { outcome: "asc" },
      });
      expect(rows.map((row) => [row.deviceId, row.outcome])).toEqual([
        [ios.id, "PENDING"],
        [android.id, "SENT"],
      ]);
      // On its last try a run leaves the held device to the run holding it, and does not fail.
      expect(await deliver(job, 3, depsWith(opened))).toMatchObject({ busy: 1, sent: 0 });
    } finally {
      await Promise.all(Object.values(opened).map((provider) => provider.close()));
    }
  });
});

describe("push worker: logs", () => {
  it("should never log push tokens, keys, access tokens or message text", async () => {
    // Runs last: by now every path above (sent, pruned, refused, retried, given up, database
    // errors, skipped) has logged.
    expect(push.logs.length).toBeGreaterThan(20);
    const text = push.logs.map((line) => JSON.stringify(line)).join("\n");
    const secrets = push.secrets();
    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      // Keys are checked by a line of their body: a PEM's first line is the same for every key.
      const needle = secret.includes("PRIVATE KEY") ? secret.split("\n")[2]! : secret;
      expect(text.includes(needle)).toBe(false);
    }
    expect(text).not.toMatch(/PRIVATE KEY/);
    for (const words of ["hello there", "something private"]) expect(text.includes(words)).toBe(false);
  });
});
