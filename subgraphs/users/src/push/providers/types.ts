/** What a notification says, whichever provider carries it. */
export interface PushNotification {
  kind: "message" | "match";
  title: string;
  body: string;
  /** iOS `aps.badge`, Android `notification_count`; absent leaves the badge as it is. */
  badge?: number;
  /**
   * Notifications with the same key replace each other on the phone (APNs `apns-collapse-id` and
   * `thread-id`, FCM `collapse_key` and `tag`): one per conversation, one per match.
   */
  collapseKey: string;
  /** Handed to the app with the notification (FCM wants strings). */
  data: Record<string, string>;
}

/**
 * What a provider answered for one device:
 * - `sent`: accepted for delivery;
 * - `unregistered`: the token is dead (app uninstalled, token rotated): prune the device;
 * - `retry`: rate-limited, provider trouble or unreachable: try again later (`retryAfterMs`: the
 *   provider's Retry-After);
 * - `rejected`: refused for good (malformed payload, bad topic…): retrying cannot help.
 */
export type SendResult =
  | { outcome: "sent"; providerId?: string }
  | { outcome: "unregistered"; reason: string }
  | { outcome: "retry"; reason: string; retryAfterMs?: number }
  | { outcome: "rejected"; reason: string };

export type ProviderName = "fcm" | "apns" | "log";

export interface PushProvider {
  readonly name: ProviderName;
  send(token: string, notification: PushNotification): Promise<SendResult>;
  close(): Promise<void>;
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
