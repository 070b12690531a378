import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadPushConfig, loadPushWorkerConfig, longestSendWindowMs } from "@hv/users/src/push/config";

const rsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const ecPem = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const serviceAccount = {
  type: "service_account",
  project_id: "haiyvee-prod",
  client_email: "push@haiyvee-prod.iam.gserviceaccount.com",
  private_key: rsaPem,
};
/** The users worker also sends mail: production requires its settings (tested in kit/test/mail-config.test.ts). */
const mail = { MAIL_SMTP_URL: "smtp://127.0.0.1:2525", APP_LINK_BASE_URL: "https://app.example" };
const apns = {
  APNS_KEY: ecPem,
  APNS_KEY_ID: "ABC123DEFG",
  APNS_TEAM_ID: "TEAM123456",
  APNS_TOPIC: "com.haiyvee.app",
};

describe("push worker configuration", () => {
  it("should refuse to start in production without the mail settings, naming the variable", () => {
    expect(() => loadPushWorkerConfig({ NODE_ENV: "production" })).toThrow(/MAIL_SMTP_URL/);
  });

  it("should log instead of sending outside production, with no credentials needed", () => {
    const config = loadPushConfig({ NODE_ENV: "development" });
    expect(config).toMatchObject({ androidProvider: "log", iosProvider: "log", port: 4007 });
    expect(config.fcm).toBeUndefined();
    expect(config.apns).toBeUndefined();
  });

  it("should use FCM and APNs in production and refuse to start without their credentials", () => {
    expect(() => loadPushConfig({ NODE_ENV: "production", ...mail, ...apns })).toThrow(
      /FCM_SERVICE_ACCOUNT is required/,
    );
    expect(() =>
      loadPushConfig({
        NODE_ENV: "production",
        ...mail,
        FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount),
      }),
    ).toThrow(/APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC required/);
    const config = loadPushConfig({
      NODE_ENV: "production",
      ...mail,
      FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount),
      ...apns,
    });
    expect(config.fcm).toMatchObject({
      projectId: "haiyvee-prod",
      clientEmail: serviceAccount.client_email,
      tokenUrl: "https://oauth2.googleapis.com/token",
      endpoint: "https://fcm.googleapis.com",
    });
    expect(config.apns).toMatchObject({ endpoint: "https://api.push.apple.com", topic: "com.haiyvee.app" });
  });

  it("should read the service account and the .p8 key from files", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "push-config-"));
    writeFileSync(
      path.join(dir, "sa.json"),
      JSON.stringify({ ...serviceAccount, token_uri: "https://oauth2.example.test/token" }),
    );
    writeFileSync(path.join(dir, "AuthKey.p8"), ecPem);
    const config = loadPushConfig({
      PUSH_ANDROID_PROVIDER: "fcm",
      PUSH_IOS_PROVIDER: "apns",
      FCM_SERVICE_ACCOUNT: path.join(dir, "sa.json"),
      ...apns,
      APNS_KEY: path.join(dir, "AuthKey.p8"),
    });
    expect(config.fcm?.tokenUrl).toBe("https://oauth2.example.test/token");
    expect(config.apns?.key).toBe(ecPem);
    expect(config.apns?.endpoint).toBe("https://api.sandbox.push.apple.com");
  });

  it.each([
    [
      "a service account that is not JSON",
      { PUSH_ANDROID_PROVIDER: "fcm", FCM_SERVICE_ACCOUNT: "{not json" },
      /FCM_SERVICE_ACCOUNT is not valid JSON/,
    ],
    [
      "a service account without its key",
      {
        PUSH_ANDROID_PROVIDER: "fcm",
        FCM_SERVICE_ACCOUNT: JSON.stringify({ ...serviceAccount, private_key: undefined }),
      },
      /client_email and private_key/,
    ],
    [
      "a service-account key that is EC",
      {
        PUSH_ANDROID_PROVIDER: "fcm",
        FCM_SERVICE_ACCOUNT: JSON.stringify({ ...serviceAccount, private_key: ecPem }),
      },
      /private_key is unusable/,
    ],
    [
      "a missing service-account file",
      { PUSH_ANDROID_PROVIDER: "fcm", FCM_SERVICE_ACCOUNT: "/nonexistent/sa.json" },
      /FCM_SERVICE_ACCOUNT: neither inline content nor an existing file/,
    ],
    [
      "an APNs key that is RSA",
      { PUSH_IOS_PROVIDER: "apns", ...apns, APNS_KEY: rsaPem },
      /APNS_KEY is unusable/,
    ],
    ["a malformed APNs key id", { PUSH_IOS_PROVIDER: "apns", ...apns, APNS_KEY_ID: "short" }, /APNS_KEY_ID/],
    [
      "an http APNs endpoint",
      { PUSH_IOS_PROVIDER: "apns", ...apns, APNS_ENDPOINT: "http://127.0.0.1:1234" },
      /APNS_ENDPOINT must be an https URL/,
    ],
    ["an unknown provider", { PUSH_IOS_PROVIDER: "pigeon" }, /PUSH_IOS_PROVIDER/],
  ])("should refuse %s, naming the variable", (_name, env, message) => {
    expect(() => loadPushConfig(env as Record<string, string>)).toThrow(message);
  });

  it("should refuse the log provider in production, where it would drop every notification", () => {
    const credentials = { FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount), ...apns };
    expect(() =>
      loadPushConfig({ NODE_ENV: "production", ...mail, ...credentials, PUSH_ANDROID_PROVIDER: "log" }),
    ).toThrow(/PUSH_ANDROID_PROVIDER=log is refused in production/);
    expect(() =>
      loadPushConfig({ NODE_ENV: "production", ...mail, ...credentials, PUSH_IOS_PROVIDER: "log" }),
    ).toThrow(/PUSH_IOS_PROVIDER=log is refused in production/);
    expect(
      loadPushConfig({ NODE_ENV: "test", PUSH_ANDROID_PROVIDER: "log", PUSH_IOS_PROVIDER: "log" }),
    ).toMatchObject({ androidProvider: "log", iosProvider: "log" });
  });

  it("should read the max ages, 15 minutes for messages and a day for matches by default", () => {
    expect(loadPushConfig({}).maxAgeMinutes).toEqual({ message: 15, match: 1440 });
    expect(
      loadPushConfig({ PUSH_MESSAGE_MAX_AGE_MINUTES: "5", PUSH_MATCH_MAX_AGE_MINUTES: "60" }).maxAgeMinutes,
    ).toEqual({ message: 5, match: 60 });
    expect(() => loadPushConfig({ PUSH_MESSAGE_MAX_AGE_MINUTES: "0" })).toThrow(
      /PUSH_MESSAGE_MAX_AGE_MINUTES/,
    );
    expect(() => loadPushConfig({ PUSH_MATCH_MAX_AGE_MINUTES: "soon" })).toThrow(
      /PUSH_MATCH_MAX_AGE_MINUTES/,
    );
  });

  it("should refuse a delivery retention shorter than the time a job may still send", () => {
    // Retries up to an hour apart: 9 of them (10 tries) span 9 h; the match max age (24 h) is longer.
    expect(longestSendWindowMs({ maxAttempts: 10, maxAgeMinutes: { message: 15, match: 1440 } })).toBe(
      9 * 3_600_000,
    );
    // A short max age ends the window first: a job past it is dropped unsent.
    expect(longestSendWindowMs({ maxAttempts: 10, maxAgeMinutes: { message: 15, match: 120 } })).toBe(
      2 * 3_600_000,
    );
    expect(() => loadPushConfig({ PUSH_DELIVERY_RETENTION_HOURS: "8" })).toThrow(
      /PUSH_DELIVERY_RETENTION_HOURS must be at least 9/,
    );
    expect(loadPushConfig({ PUSH_DELIVERY_RETENTION_HOURS: "9" }).deliveryRetentionHours).toBe(9);
    expect(() =>
      loadPushConfig({
        PUSH_DELIVERY_RETENTION_HOURS: "24",
        PUSH_MAX_ATTEMPTS: "50",
        PUSH_MATCH_MAX_AGE_MINUTES: "2880",
      }),
    ).toThrow(/PUSH_DELIVERY_RETENTION_HOURS must be at least 48/);
    expect(
      loadPushConfig({
        PUSH_DELIVERY_RETENTION_HOURS: "1",
        PUSH_MAX_ATTEMPTS: "2",
        PUSH_MATCH_MAX_AGE_MINUTES: "60",
      }).deliveryRetentionHours,
    ).toBe(1);
  });

  it("should never put key material in an error message", () => {
    let message = "";
    try {
      loadPushConfig({
        PUSH_ANDROID_PROVIDER: "fcm",
        FCM_SERVICE_ACCOUNT: JSON.stringify({ ...serviceAccount, private_key: ecPem }),
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/FCM_SERVICE_ACCOUNT/);
    expect(message).not.toContain("PRIVATE KEY");
  });
});
