import { CHAT_ENV, loadChatConfig } from "./config";

describe("chat configuration", () => {
  const sentinels = { REDIS_SENTINELS: "10.0.0.1:26379", REDIS_SENTINEL_NAME: "hv-main" };

  it("should give Chat's fan-out the sentinels too, unless CHAT_PUBSUB_REDIS_URL names a server of its own", () => {
    expect(loadChatConfig(sentinels).pubsubRedis.sentinel?.name).toBe("hv-main");
    expect(
      loadChatConfig({ ...sentinels, CHAT_PUBSUB_REDIS_URL: "redis://pubsub:6379" }).pubsubRedis,
    ).toEqual({ url: "redis://pubsub:6379", sentinel: null });
    expect(() => loadChatConfig({ CHAT_PUBSUB_REDIS_URL: "redis://pubsub:6379?x=1" })).toThrow(
      /CHAT_PUBSUB_REDIS_URL/,
    );
  });

  it("should keep the defaults and refuse a bad value naming the variable", () => {
    const config = loadChatConfig({});
    expect({
      requireMatch: config.requireMatch,
      messageMaxLength: config.messageMaxLength,
      sendBurst: config.sendBurst,
    }).toEqual({
      requireMatch: true,
      messageMaxLength: 4000,
      sendBurst: 20,
    });
    expect(loadChatConfig({ CHAT_REQUIRE_MATCH: "false" }).requireMatch).toBe(false);
    expect(() => loadChatConfig({ CHAT_MESSAGE_MAX_LENGTH: "0" })).toThrow(
      /^Invalid environment variable CHAT_MESSAGE_MAX_LENGTH="0"/,
    );
    expect(() => loadChatConfig({ CHAT_REQUIRE_MATCH: "yes" })).toThrow(/CHAT_REQUIRE_MATCH/);
    expect(Object.keys(CHAT_ENV).every((name) => name.startsWith("CHAT_"))).toBe(true);
  });
});
