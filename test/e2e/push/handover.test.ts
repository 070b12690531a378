/**
 * Events handed over together (Chat's sends through `publishCommitted` within the relay's window)
 * reach the push worker as one job, which it splits: every recipient of every message gets their
 * push exactly once, and an event published again on its own (the poll after a lost mark) is not
 * pushed twice.
 */
import { messageEvent, usePushWorker } from "./harness";

const push = usePushWorker();

describe("push worker: events handed over together", () => {
  it("should push every recipient of a burst of messages exactly once, from one event job", async () => {
    const sender = await push.person("Ada");
    const recipients = [await push.person("Bo"), await push.person("Cy")];
    const devices = await Promise.all(recipients.map((recipient) => push.device(recipient, "ANDROID")));
    const events = Array.from({ length: 6 }, (_, i) =>
      messageEvent(sender, [[recipients[i % 2]!, i + 1]], {
        conversationKind: "GROUP",
        recipients: recipients.map((userId) => ({ userId, unreadCount: i + 1 })),
      }),
    );
    const eventIds = await push.handOver("message.created", events);
    for (const event of events) {
      const done = await push.waitForJobs(`message:${event.messageId}`, 2);
      expect(done.map((entry) => entry.job.recipientId).sort()).toEqual([...recipients].sort());
      expect(done.map((entry) => entry.outcome)).toEqual([
        expect.objectContaining({ sent: 1 }),
        expect.objectContaining({ sent: 1 }),
      ]);
    }
    for (const device of devices) expect(push.fcm.sendsTo(device.token)).toHaveLength(events.length);
    const jobs = await push.eventJobs();
    expect(jobs).toEqual([{ id: `batch.${eventIds[0]}`, name: "event.batch", eventIds }]);

    // The poll publishes them again, each on its own (as after a relay that died before marking):
    // the push jobs' ids drop them.
    // The hand-over marks its rows published a little later: reset them only once that has happened.
    const unmarked = () => push.db.outboxEvent.count({ where: { id: { in: eventIds }, publishedAt: null } });
    while ((await unmarked()) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await push.db.outboxEvent.updateMany({ where: { id: { in: eventIds } }, data: { publishedAt: null } });
    await push.publish("message.created", messageEvent(sender, [])); // a flush, with them
    for (const eventId of eventIds) await push.waitForEvent(eventId);
    for (const event of events) expect(await push.pushJobCount(`message:${event.messageId}`)).toBe(2);
    for (const device of devices) expect(push.fcm.sendsTo(device.token)).toHaveLength(events.length);
  });
});
