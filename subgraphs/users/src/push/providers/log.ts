import type { Logger } from "@hv/kit";
import type { PushNotification, PushProvider, PushTarget, SendResult } from "./types";

/**
 * Development: logs that a notification would be sent instead of sending it, and says it was sent.
 * What it logs is what an operator may see: the kind, the ids, the device id and the lengths of
 * the title and body, never the words (a name, a message's text) nor the push token.
 * Refused in production (src/push/config.ts).
 */
export function logProvider(logger: Logger, platform: "IOS" | "ANDROID"): PushProvider {
  return {
    name: "log",
    async send(target: PushTarget, notification: PushNotification): Promise<SendResult> {
      logger.info(
        {
          platform,
          deviceId: target.deviceId,
          kind: notification.kind,
          ids: notification.data,
          titleLength: notification.title.length,
          bodyLength: notification.body.length,
          badge: notification.badge,
          expiresAt: notification.expiresAt.toISOString(),
        },
        "push (log provider): would send",
      );
      return { outcome: "sent" };
    },
    async close() {},
  };
}
