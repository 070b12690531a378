import { logProvider } from "@hv/users/src/push/providers/log";
import { capturingLogger } from "../../support/log-capture";

describe("push log provider (development)", () => {
  it("should log the kind, ids, device id and lengths, never the words or the token", async () => {
    const { logger, lines } = capturingLogger("push-worker");
    const provider = logProvider(logger, "ANDROID");
    const token = "fcmTOKEN0123456789abcdefSECRET";
    const result = await provider.send(
      { deviceId: "7d0f5a2e-8c1b-4a57-9a43-2f4f0b1c9e11", token },
      {
        kind: "message",
        title: "Ada Lovelace",
        body: "meet me at the old mill at nine",
        badge: 2,
        collapseKey: "c1",
        data: { conversationId: "c1", messageId: "m1", senderId: "u1" },
        expiresAt: new Date("2026-11-23T12:15:00Z"),
        ttlSeconds: 900,
      },
    );
    expect(result).toEqual({ outcome: "sent" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: "info",
      platform: "ANDROID",
      deviceId: "7d0f5a2e-8c1b-4a57-9a43-2f4f0b1c9e11",
      kind: "message",
      ids: { conversationId: "c1", messageId: "m1", senderId: "u1" },
      titleLength: 12,
      bodyLength: 31,
    });
    const text = JSON.stringify(lines);
    for (const secret of ["Ada", "Lovelace", "old mill", "SECRET", token.slice(-6)])
      expect(text.includes(secret)).toBe(false);
  });
});
