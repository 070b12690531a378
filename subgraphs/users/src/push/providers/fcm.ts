import { JWT } from "google-auth-library";
import type { FcmCredentials } from "../config";
import { GOOGLE_TOKEN_URL } from "../config";
import {
  retryAfterMs,
  type PushNotification,
  type PushProvider,
  type PushTarget,
  type SendResult,
} from "./types";

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const REQUEST_TIMEOUT_MS = 10_000;

interface FcmErrorBody {
  error?: {
    code?: number;
    status?: string;
    message?: string;
    details?: Array<{ "@type"?: string; errorCode?: string }>;
  };
}

/** FCM's own error code (`UNREGISTERED`, `QUOTA_EXCEEDED`…) from an error body, else its gRPC status. */
function fcmErrorCode(body: FcmErrorBody): string {
  const detail = body.error?.details?.find((entry) =>
    entry["@type"]?.endsWith("google.firebase.fcm.v1.FcmError"),
  );
  return detail?.errorCode ?? body.error?.status ?? "UNKNOWN";
}

/**
 * What an FCM error answer means for the device. Only `UNREGISTERED` in the error details (FCM
 * sends it with 404) prunes: a plain 404 (a wrong URL or project, a proxy) says nothing about the
 * token. `SENDER_ID_MISMATCH` (403: the token belongs to another Firebase project, which may be our
 * misconfiguration) is refused for this device and kept. Other 403s (`PERMISSION_DENIED`: the
 * service account lacks the role, the API is off) are configuration problems that get fixed, so
 * they are retried with backoff like 401, 429 and 5xx.
 */
export function classifyFcmError(
  status: number,
  code: string,
): "unregistered" | "rejected" | "retry" | "reauthenticate" {
  if (code === "UNREGISTERED") return "unregistered";
  if (code === "SENDER_ID_MISMATCH") return "rejected";
  if (status === 401) return "reauthenticate";
  if (status === 403 || status === 429 || status >= 500) return "retry";
  // 400 INVALID_ARGUMENT, a plain 404 and other 4xx: sending the same request again cannot help.
  return "rejected";
}

/** The FCM HTTP v1 message for one Android device; FCM drops it when `ttl` runs out undelivered. */
export function fcmMessage(token: string, notification: PushNotification) {
  return {
    token,
    notification: { title: notification.title, body: notification.body },
    data: { ...notification.data, kind: notification.kind },
    android: {
      priority: "HIGH",
      ttl: `${Math.max(1, Math.floor(notification.ttlSeconds))}s`,
      collapse_key: notification.collapseKey,
      notification: {
        tag: notification.collapseKey,
        ...(notification.badge === undefined ? {} : { notification_count: notification.badge }),
      },
    },
  };
}

/**
 * FCM HTTP v1 with a service account: google-auth-library signs the OAuth 2.0 JWT grant (RS256)
 * and caches the access token until shortly before it expires; the send is one
 * `POST /v1/projects/<id>/messages:send` per device. The token endpoint is the library's (Google's)
 * unless `tokenUrl` says otherwise (a local server in tests): the library's HTTP client is told to
 * send its token request there through a request interceptor, its documented extension point.
 */
export function fcmProvider(credentials: FcmCredentials): PushProvider {
  const jwt = new JWT({
    email: credentials.clientEmail,
    key: credentials.privateKey,
    scopes: [SCOPE],
    // Node's own fetch: gaxios would otherwise import node-fetch (ESM) on first use.
    transporterOptions: { fetchImplementation: fetch as never },
  });
  if (credentials.tokenUrl !== GOOGLE_TOKEN_URL) {
    const tokenUrl = new URL(credentials.tokenUrl);
    jwt.transporter.interceptors.request.add({
      resolved: async (options) => {
        if (options.url.href === GOOGLE_TOKEN_URL) options.url = tokenUrl;
        return options;
      },
    });
  }
  const sendUrl = `${credentials.endpoint}/v1/projects/${encodeURIComponent(credentials.projectId)}/messages:send`;

  return {
    name: "fcm",
    async send({ token }: PushTarget, notification: PushNotification): Promise<SendResult> {
      let accessToken: string;
      try {
        const result = await jwt.getAccessToken();
        if (!result.token) return { outcome: "retry", reason: "oauth: no access token" };
        accessToken = result.token;
      } catch (error) {
        return {
          outcome: "retry",
          reason: `oauth: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      let response: Response;
      try {
        response = await fetch(sendUrl, {
          method: "POST",
          headers: {
            authorization: `Bearer ${accessToken}`,
            "content-type": "application/json; charset=utf-8",
          },
          body: JSON.stringify({ message: fcmMessage(token, notification) }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        return {
          outcome: "retry",
          reason: `unreachable: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      const text = await response.text().catch(() => "");
      if (response.ok) {
        let name: string | undefined;
        try {
          name = (JSON.parse(text) as { name?: string }).name;
        } catch {
          // accepted all the same
        }
        return name === undefined ? { outcome: "sent" } : { outcome: "sent", providerId: name };
      }
      let body: FcmErrorBody = {};
      try {
        body = JSON.parse(text) as FcmErrorBody;
      } catch {
        // not JSON (a proxy's error page): judged by status alone
      }
      const code = fcmErrorCode(body);
      const reason = `${response.status} ${code}`;
      switch (classifyFcmError(response.status, code)) {
        case "unregistered":
          return { outcome: "unregistered", reason };
        case "rejected":
          return { outcome: "rejected", reason };
        case "reauthenticate":
          // Our access token was refused: fetch a new one on the next try.
          jwt.credentials = {};
          return { outcome: "retry", reason };
        case "retry": {
          const after = retryAfterMs(response.headers.get("retry-after"));
          return after === undefined
            ? { outcome: "retry", reason }
            : { outcome: "retry", reason, retryAfterMs: after };
        }
      }
    },
    async close() {},
  };
}
