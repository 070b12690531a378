import { redisOptions } from "@hv/kit";
import { loadMediaWorkerConfig } from "./config";
import { processorEnvironment, type ProcessorSettings } from "./processor-settings";
import { PROCESSOR_CONFIG_ENV } from "./queue";

describe("media processor settings", () => {
  it("should hand the sandboxed processor the sentinel settings, so its queue reaches the same Redis", () => {
    const config = loadMediaWorkerConfig({
      REDIS_URL: "redis://:primary-secret@ignored:6379/2",
      REDIS_SENTINELS: "10.0.0.1:26379,10.0.0.2:26379",
      REDIS_SENTINEL_NAME: "hv-main",
      REDIS_SENTINEL_PASSWORD: "sentinel-secret",
      MEDIA_GRANT_SECRET: "x".repeat(32),
    });
    const env = processorEnvironment(
      config,
      { PATH: "/usr/bin", MEDIA_GRANT_SECRET: "x".repeat(32) },
      PROCESSOR_CONFIG_ENV,
    );
    const settings = JSON.parse(env[PROCESSOR_CONFIG_ENV] ?? "{}") as ProcessorSettings;
    expect(settings.redis).toEqual(config.redis);
    expect(redisOptions(settings.redis)).toMatchObject({
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "10.0.0.2", port: 26379 },
      ],
      name: "hv-main",
      sentinelPassword: "sentinel-secret",
      password: "primary-secret",
      db: 2,
    });
    expect(env.MEDIA_GRANT_SECRET).toBeUndefined();
  });
});
