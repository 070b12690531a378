import apn from "@parse/node-apn";
import type { ApnsCredentials } from "../config";
import type { PushNotification, PushProvider, PushTarget, SendResult } from "./types";

const REQUEST_TIMEOUT_MS = 10_000;
/**
 * Reasons that mean the token is dead (APNs sends them with 410). `BadDeviceToken` and
 * `DeviceTokenNotForTopic` are not among them: a sandbox token sent to production, or a token of
 * another bundle id, is our configuration's fault as often as the token's, so the device is kept
 * and that notification refused.
 */
const DEAD_TOKEN_REASONS = new Set(["Unregistered", "ExpiredToken"]);

/** What an APNs error answer means for the device. */
export function classifyApnsError(status: number, reason: string): "unregistered" | "rejected" | "retry" {
  if (status === 410 || DEAD_TOKEN_REASONS.has(reason)) return "unregistered";
  // 403: our provider token (expired: the library makes a new one), 429: too many for this device,
  // 5xx: Apple's trouble. All pass.
  if (status === 403 || status === 429 || status >= 500) return "retry";
  return "rejected";
}

/** The APNs notification for one iOS device: a visible alert (push type alert, priority 10). */
export function apnsNotification(topic: string, notification: PushNotification): apn.Notification {
  const note = new apn.Notification();
  note.topic = topic;
  note.pushType = "alert";
  note.priority = 10;
  // Apple stores an undeliverable notification until then, and drops it after.
  note.expiry = Math.floor(notification.expiresAt.getTime() / 1000);
  note.alert = { title: notification.title, body: notification.body };
  note.sound = "default";
  if (notification.badge !== undefined) note.badge = notification.badge;
  note.collapseId = notification.collapseKey;
  note.threadId = notification.collapseKey;
  note.payload = { ...notification.data, kind: notification.kind };
  return note;
}

/**
 * APNs over HTTP/2 with a provider token (ES256 JWT from the .p8 key, `kid` = key id, `iss` = team
 * id, renewed by the library before Apple's one-hour limit), through @parse/node-apn. The library's
 * own retries are off: a retry is the push job's, with backoff, so it survives a restart.
 */
export function apnsProvider(credentials: ApnsCredentials): PushProvider {
  const endpoint = new URL(credentials.endpoint);
  const provider = new apn.Provider({
    token: { key: credentials.key, keyId: credentials.keyId, teamId: credentials.teamId },
    production: endpoint.hostname === "api.push.apple.com",
    // node:http2 takes the port from the address it connects to.
    address: endpoint.host,
    port: endpoint.port === "" ? 443 : Number(endpoint.port),
    ...(credentials.ca === undefined ? {} : { ca: [credentials.ca] }),
    connectionRetryLimit: 0,
    requestTimeout: REQUEST_TIMEOUT_MS,
  });

  return {
    name: "apns",
    async send({ token }: PushTarget, notification: PushNotification): Promise<SendResult> {
      let result: apn.Responses<apn.ResponseSent, apn.ResponseFailure>;
      try {
        result = await provider.send(apnsNotification(credentials.topic, notification), token);
      } catch (error) {
        return {
          outcome: "retry",
          reason: `apns: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      const sent = result.sent[0] as (apn.ResponseSent & { "apns-id"?: string }) | undefined;
      if (sent)
        return sent["apns-id"] ? { outcome: "sent", providerId: sent["apns-id"] } : { outcome: "sent" };
      const failure = result.failed[0];
      const status = typeof failure?.status === "number" ? failure.status : Number(failure?.status);
      const reasonText = failure?.response?.reason ?? failure?.error?.message ?? "no answer";
      const reason = Number.isFinite(status) ? `${status} ${reasonText}` : reasonText;
      if (!failure || !Number.isFinite(status)) return { outcome: "retry", reason }; // timeout, connection trouble
      return { outcome: classifyApnsError(status, reasonText), reason };
    },
    async close() {
      await provider.shutdown();
    },
  };
}
