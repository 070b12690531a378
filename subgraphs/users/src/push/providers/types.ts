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
  /**
   * When the notification is no longer worth showing (the event's time + the kind's max age): the
   * providers drop it if the phone cannot be reached by then (APNs `apns-expiration`).
   */
  expiresAt: Date;
  /** The same as seconds left from when it is sent (FCM `android.ttl`), at least 1. */
  ttlSeconds: number;
}

/** The device a notification goes to. */
export interface PushTarget {
  /** Our device id (for logs). */
  deviceId: string;
  /** The provider's token: a credential for reaching someone's phone; never logged. */
  token: string;
}

/**
 * What a provider answered for one device:
 * - `sent`: accepted for delivery;
 * - `unregistered`: the provider says the token is dead (FCM `UNREGISTERED`, APNs 410 /
 *   `Unregistered` / `ExpiredToken`): prune the device. Nothing else prunes: a token we cannot
 *   use (wrong project, wrong topic, malformed) may be our configuration's fault;
 * - `retry`: rate-limited, provider trouble, our credentials refused, or unreachable: try again
 *   later (`retryAfterMs`: the provider's Retry-After);
 * - `rejected`: refused for good for this device (malformed payload, token of another project or
 *   app, bad token…): retrying cannot help, the device is kept.
 */
export type SendResult =
  | { outcome: "sent"; providerId?: string }
  | { outcome: "unregistered"; reason: string }
  | { outcome: "retry"; reason: string; retryAfterMs?: number }
  | { outcome: "rejected"; reason: string };

export type ProviderName = "fcm" | "apns" | "log";

export interface PushProvider {
  readonly name: ProviderName;
  send(target: PushTarget, notification: PushNotification): Promise<SendResult>;
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
