import { messageEvent, usePushWorker } from "./harness";

const push = usePushWorker();

describe("push worker: the badge", () => {
  it("should show the recipient's total unread count when the event carries it, else the conversation's", async () => {
    const sender = await push.person("Ada");
    const recipient = await push.person("Bo");
    const ios = await push.device(recipient, "IOS");
    const android = await push.device(recipient, "ANDROID");

    const withTotal = messageEvent(sender, [[recipient, 2]]);
    withTotal.recipients = [{ userId: recipient, unreadCount: 2, totalUnreadCount: 9 }];
    await push.publish("message.created", withTotal);
    await push.waitForJobs(`message:${withTotal.messageId}`, 1);
    expect((push.apns.sendsTo(ios.token).at(-1)!.payload as { aps: { badge: number } }).aps.badge).toBe(9);
    expect(push.fcm.sendsTo(android.token).at(-1)!.body).toMatchObject({
      message: { android: { notification: { notification_count: 9 } } },
    });

    // An event written before totalUnreadCount existed: the conversation's count.
    const older = messageEvent(sender, [[recipient, 3]]);
    await push.publish("message.created", older);
    await push.waitForJobs(`message:${older.messageId}`, 1);
    expect((push.apns.sendsTo(ios.token).at(-1)!.payload as { aps: { badge: number } }).aps.badge).toBe(3);
    expect(push.fcm.sendsTo(android.token).at(-1)!.body).toMatchObject({
      message: { android: { notification: { notification_count: 3 } } },
    });
  });
});
