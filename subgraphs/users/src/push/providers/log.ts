import type { Logger } from "@hv/kit";
import type { PushNotification, PushProvider, SendResult } from "./types";

/**
 * Development: writes the notification to the log instead of sending it, and says it was sent.
 * The token is shortened: it is a credential for reaching someone's phone.
 */
export function logProvider(logger: Logger, platform: "IOS" | "ANDROID"): PushProvider {
  return {
    name: "log",
    async send(token: string, notification: PushNotification): Promise<SendResult> {
      logger.info({ platform, token: `…${token.slice(-6)}`, notification }, "push (log provider): would send");
      return { outcome: "sent" };
    },
    async close() {},
  };
}
