import { readFileSync } from "node:fs";
import path from "node:path";
import { ConfigError, ENV_CATALOGUE, loadDiscoveryConfig, loadGatewayConfig, loadSubgraphConfig } from "../src/config";

describe("configuration", () => {
  it("should fill every default when the environment is empty", () => {
    const config = loadSubgraphConfig("chat", {});
    expect(config).toEqual({
      nodeEnv: "development",
      isProduction: false,
      logLevel: "info",
      host: "0.0.0.0",
      redisUrl: "redis://127.0.0.1:6379",
      name: "chat",
      port: 4003,
      databaseUrl: "postgresql://postgres@127.0.0.1:5432/hv_chat",
    });
  });

  it("should read the gateway's subgraph URLs and port", () => {
    const config = loadGatewayConfig({ GATEWAY_PORT: "8080", MEDIA_URL: "http://media.internal:80/graphql" });
    expect(config.port).toBe(8080);
    expect(config.subgraphUrls).toEqual({
      users: "http://127.0.0.1:4001/graphql",
      discovery: "http://127.0.0.1:4002/graphql",
      chat: "http://127.0.0.1:4003/graphql",
      media: "http://media.internal:80/graphql",
    });
  });

  it("should fail fast naming the variable and the value when a value is invalid", () => {
    expect(() => loadSubgraphConfig("users", { USERS_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadSubgraphConfig("users", { USERS_PORT: "70000" })).toThrow(/USERS_PORT="70000"/);
    expect(() => loadGatewayConfig({ NODE_ENV: "prod" })).toThrow(/NODE_ENV="prod"/);
    expect(() => loadDiscoveryConfig({ DISCOVERY_LOCATION_MAX_AGE_MINUTES: "-5" })).toThrow(
      /DISCOVERY_LOCATION_MAX_AGE_MINUTES/,
    );
    expect(() => loadSubgraphConfig("media", { MEDIA_DATABASE_URL: "not a url" })).toThrow(/MEDIA_DATABASE_URL/);
  });

  it("should treat an empty value as unset", () => {
    expect(loadSubgraphConfig("users", { USERS_PORT: "" }).port).toBe(4001);
  });

  it("should be documented: the README lists every variable in the catalogue", () => {
    const readme = readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
    const missing = Object.keys(ENV_CATALOGUE).filter((name) => !readme.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
