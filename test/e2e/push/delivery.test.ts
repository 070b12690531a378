import { randomUUID } from "node:crypto";
import { localMinutes } from "@hv/users/src/modules/notification-settings";
import { fcmError } from "./fake-providers";
import { APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, messageEvent, usePushWorker } from "./harness";

const push = usePushWorker();

describe("push worker: message and match notifications through FCM and APNs", () => {
  it("should send a message notification with the exact FCM and APNs requests, and count it", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    const sentFcm = await push.metric("push_notifications_sent_total", { provider: "fcm" });
    const sentApns = await push.metric("push_notifications_sent_total", { provider: "apns" });

    const event = messageEvent(sender, [[recipient, 3]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ sent: 2, pruned: 0, rejected: 0, retrying: 0 });

    // OAuth 2.0 JWT grant, signed with the service account's key.
    const grant = push.fcm.tokenRequests.at(-1)!;
    expect(grant).toMatchObject({ grantType: "urn:ietf:params:oauth:grant-type:jwt-bearer", signatureValid: true, header: { alg: "RS256" } });
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
        android: { priority: "HIGH", collapse_key: event.conversationId, notification: { tag: event.conversationId, notification_count: 3 } },
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
    });
    expect(apnsSend!.headers.authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(apnsSend!.jwtValid).toBe(true);
    expect(apnsSend!.jwtHeader).toMatchObject({ alg: "ES256", kid: APNS_KEY_ID });
    expect(apnsSend!.jwtClaims).toMatchObject({ iss: APNS_TEAM_ID, iat: expect.any(Number) });
    // A visible alert (shown even when the app was force-quit), not a content-available push.
    expect(apnsSend!.payload).toEqual({
      aps: { alert: { title: "Ada", body: "hello there" }, badge: 3, sound: "default", "thread-id": event.conversationId },
      kind: "message",
      conversationId: event.conversationId,
      conversationKind: "DIRECT",
      messageId: event.messageId,
      seq: "7",
      senderId: sender,
    });

    const deliveries = await push.db.pushDelivery.findMany({ where: { subjectKey: `message:${event.messageId}` } });
    expect(deliveries.map((row) => [row.deviceId, row.outcome]).sort()).toEqual([[android.id, "SENT"], [ios.id, "SENT"]].sort());
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
    // A second trigger for the same message (another event id) while the first job is kept: BullMQ
    // drops the job by its id. Wait for the event to be handled by publishing a marker after it.
    await push.publish("message.created", { ...event, recipients: [{ userId: recipient, unreadCount: 2 }] });
    const marker = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", marker);
    await push.waitForJobs(`message:${marker.messageId}`, 1);
    expect(push.finished.filter((entry) => entry.job.subjectKey === `message:${event.messageId}`)).toHaveLength(1);
    // The same event again after the job is gone (its retention over): a new job runs, and the
    // delivery rows make it send nothing.
    await push.removeJob(`message:${event.messageId}`, recipient);
    await push.publish("message.created", event);
    const [, again] = await push.waitForJobs(`message:${event.messageId}`, 2);
    expect(again?.outcome).toMatchObject({ skipped: "already_sent", sent: 0 });
    expect(await push.metric("push_notifications_skipped_total", { reason: "already_sent" })).toBe(skipped + 1);
    expect(push.fcm.sendsTo(android.token).filter((send) => send.body.message?.data?.messageId === event.messageId)).toHaveLength(1);
    expect(push.apns.sendsTo(ios.token).filter((send) => send.payload.messageId === event.messageId)).toHaveLength(1);
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
    expect(toAda?.payload.aps).toEqual({ alert: { title: "New match", body: "You and Bo liked each other" }, sound: "default", "thread-id": `match-${matchId}` });
    expect(toAda?.headers["apns-collapse-id"]).toBe(`match-${matchId}`);
    const [toBo] = push.fcm.sendsTo(boPhone.token);
    expect(toBo?.body.message?.notification).toEqual({ title: "New match", body: "You and Ada liked each other" });
    expect(toBo?.body.message?.data).toEqual({ kind: "match", matchId, userId: ada });
  });
});

describe("push worker: provider errors", () => {
  it("should prune devices whose tokens the providers report unregistered", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const gone = await push.device(recipient, "IOS");
    const badToken = await push.device(recipient, "IOS");
    push.fcm.script(android.token, [fcmError(404, "NOT_FOUND", "UNREGISTERED")]);
    push.apns.script(gone.token, [{ status: 410, body: { reason: "Unregistered", timestamp: Date.now() } }]);
    push.apns.script(badToken.token, [{ status: 400, body: { reason: "BadDeviceToken" } }]);
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

  it("should retry 429 and 503 with backoff (respecting Retry-After) and then send, once per device", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const ios = await push.device(recipient, "IOS");
    push.fcm.script(android.token, [fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", { "retry-after": "1" })]);
    push.apns.script(ios.token, [{ status: 503, body: { reason: "ServiceUnavailable" } }, { status: 429, body: { reason: "TooManyRequests" } }]);
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
    const failedFcm = await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "rejected" });
    const failedApns = await push.metric("push_notifications_failed_total", { provider: "apns", reason: "rejected" });

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
    expect(await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "rejected" })).toBe(failedFcm + 1);
    expect(await push.metric("push_notifications_failed_total", { provider: "apns", reason: "rejected" })).toBe(failedApns + 1);
  });

  it("should give up after the last attempt and count the notification failed", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const android = await push.device(recipient, "ANDROID");
    const unavailable = fcmError(503, "UNAVAILABLE", "UNAVAILABLE");
    push.fcm.script(android.token, [unavailable, unavailable, unavailable, unavailable]);
    const exhausted = await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "exhausted" });
    const event = messageEvent(sender, [[recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toBeInstanceOf(Error);
    expect(push.fcm.sendsTo(android.token)).toHaveLength(3); // PUSH_MAX_ATTEMPTS
    expect(await push.metric("push_notifications_failed_total", { provider: "fcm", reason: "exhausted" })).toBe(exhausted + 1);
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

  it("should not notify during the recipient's quiet hours in their time zone", async () => {
    const people = await pair();
    const timeZone = "Pacific/Kiritimati"; // UTC+14: its local day differs from UTC's
    const now = localMinutes(timeZone, new Date());
    await push.db.notificationSettings.create({
      data: { userId: people.recipient, timeZone, quietStart: (now + 1440 - 60) % 1440, quietEnd: (now + 60) % 1440 },
    });
    const skipped = await push.metric("push_notifications_skipped_total", { reason: "quiet_hours" });
    const event = messageEvent(people.sender, [[people.recipient, 1]]);
    await push.publish("message.created", event);
    const [done] = await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "quiet_hours", sent: 0 });
    expect(sendsFor(people)).toBe(0);
    expect(await push.metric("push_notifications_skipped_total", { reason: "quiet_hours" })).toBe(skipped + 1);

    // Quiet hours twelve hours away (local time): the next message goes out.
    await push.db.notificationSettings.update({
      where: { userId: people.recipient },
      data: { quietStart: (now + 720 - 60) % 1440, quietEnd: (now + 720 + 60) % 1440 },
    });
    const next = messageEvent(people.sender, [[people.recipient, 2]]);
    await push.publish("message.created", next);
    const [sent] = await push.waitForJobs(`message:${next.messageId}`, 1);
    expect(sent?.outcome).toMatchObject({ sent: 2 });
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
    expect(jobs.find((entry) => entry.job.recipientId === people.recipient)?.outcome).toMatchObject({ sent: 2 });
  });

  it("should hide message text when the recipient turned previews off", async () => {
    const people = await pair();
    await push.db.notificationSettings.create({ data: { userId: people.recipient, messagePreviews: false } });
    const event = messageEvent(people.sender, [[people.recipient, 1]], { preview: "something private" });
    await push.publish("message.created", event);
    await push.waitForJobs(`message:${event.messageId}`, 1);
    expect(push.fcm.sendsTo(people.android.token)[0]?.body.message?.notification).toEqual({ title: "Ada", body: "New message" });
    expect(push.apns.sendsTo(people.ios.token)[0]?.payload.aps.alert).toEqual({ title: "Ada", body: "New message" });
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
    expect(jobs.map((entry) => (entry.outcome as { skipped?: string }).skipped)).toEqual(["blocked", "blocked"]);
    expect(sendsFor(people) + sendsFor(other)).toBe(0);
  });

  it("should never notify the sender about their own message, nor anyone about a banned sender", async () => {
    const people = await pair();
    const senderPhone = await push.device(people.sender, "ANDROID");
    const event = messageEvent(people.sender, [[people.sender, 0]]);
    await push.publish("message.created", event);
    const marker = messageEvent(people.sender, [[people.recipient, 1]]);
    await push.publish("message.created", marker);
    await push.waitForJobs(`message:${marker.messageId}`, 1);
    expect(push.finished.some((entry) => entry.job.subjectKey === `message:${event.messageId}`)).toBe(false);
    expect(push.fcm.sendsTo(senderPhone.token)).toHaveLength(0);

    await push.db.user.update({ where: { id: people.sender }, data: { bannedAt: new Date() } });
    const after = messageEvent(people.sender, [[people.recipient, 2]]);
    await push.publish("message.created", after);
    const [done] = await push.waitForJobs(`message:${after.messageId}`, 1);
    expect(done?.outcome).toMatchObject({ skipped: "actor_gone" });
  });
});
