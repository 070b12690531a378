import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateSigningKeyJwk } from "./auth/signing-keys";
import {
  ConfigError,
  ENV_CATALOGUE,
  loadDiscoveryConfig,
  loadGatewayConfig,
  loadRedisTarget,
  loadSubgraphConfig,
  loadUsersConfig,
} from "./config";
import { redisOptions } from "./redis";

describe("configuration", () => {
  it("should fill every default when the environment is empty", () => {
    const config = loadSubgraphConfig("chat", {});
    expect(config).toEqual({
      nodeEnv: "development",
      isProduction: false,
      logLevel: "info",
      host: "127.0.0.1",
      redis: { url: "redis://127.0.0.1:6379", sentinel: null },
      trustProxy: "loopback",
      auth: {
        jwksUrl: "http://127.0.0.1:4001/.well-known/jwks.json",
        issuer: "haiyvee",
        audience: "haiyvee-api",
        revocationAssertionSecret: null,
      },
      name: "chat",
      port: 4003,
      databaseUrl: "postgresql://postgres@127.0.0.1:5432/hv_chat",
      listenDatabaseUrl: "postgresql://postgres@127.0.0.1:5432/hv_chat",
      databasePoolMin: 0,
      knownOperations: true,
      eventsPrefix: "hv",
    });
  });

  it("should read SUBGRAPH_KNOWN_OPERATIONS as true or false only", () => {
    expect(loadSubgraphConfig("chat", { SUBGRAPH_KNOWN_OPERATIONS: "false" }).knownOperations).toBe(false);
    expect(() => loadSubgraphConfig("chat", { SUBGRAPH_KNOWN_OPERATIONS: "no" })).toThrow(
      /SUBGRAPH_KNOWN_OPERATIONS/,
    );
  });

  it("should read DATABASE_POOL_MIN up to the pool's size", () => {
    expect(loadSubgraphConfig("chat", { DATABASE_POOL_MIN: "10" }).databasePoolMin).toBe(10);
    expect(() => loadSubgraphConfig("chat", { DATABASE_POOL_MIN: "11" })).toThrow(/DATABASE_POOL_MIN/);
    expect(() => loadSubgraphConfig("users", { DATABASE_POOL_MIN: "-1" })).toThrow(ConfigError);
  });

  it("should give the outbox relay's LISTEN its own direct URL when one is set", () => {
    const pooled = "postgresql://app@pgbouncer:6432/hv_chat";
    const direct = "postgresql://app@postgres:5432/hv_chat";
    expect(loadSubgraphConfig("chat", { CHAT_DATABASE_URL: pooled })).toMatchObject({
      databaseUrl: pooled,
      listenDatabaseUrl: pooled,
    });
    expect(
      loadSubgraphConfig("chat", { CHAT_DATABASE_URL: pooled, CHAT_LISTEN_DATABASE_URL: direct }),
    ).toMatchObject({ databaseUrl: pooled, listenDatabaseUrl: direct });
    expect(() => loadSubgraphConfig("users", { USERS_LISTEN_DATABASE_URL: "pgbouncer" })).toThrow(
      /USERS_LISTEN_DATABASE_URL: Invalid URL/,
    );
  });

  it("should read the revocation assertions' secret, and refuse a short one without echoing it", () => {
    const secret = "a-revocation-assertion-secret-of-40-chars";
    expect(
      loadGatewayConfig({ AUTH_REVOCATION_ASSERTION_SECRET: secret }).auth.revocationAssertionSecret,
    ).toBe(secret);
    expect(
      loadSubgraphConfig("chat", { AUTH_REVOCATION_ASSERTION_SECRET: secret }).auth.revocationAssertionSecret,
    ).toBe(secret);
    expect(() => loadSubgraphConfig("chat", { AUTH_REVOCATION_ASSERTION_SECRET: "short-secret" })).toThrow(
      /^Invalid environment variable AUTH_REVOCATION_ASSERTION_SECRET: /,
    );
    expect(() =>
      loadSubgraphConfig("chat", { AUTH_REVOCATION_ASSERTION_SECRET: "short-secret" }),
    ).not.toThrow(/short-secret/);
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

  it("should read the gateway's upstream connections per subgraph, one by default", () => {
    expect(loadGatewayConfig({}).upstreamConnections).toBe(1);
    expect(loadGatewayConfig({ GATEWAY_UPSTREAM_CONNECTIONS: "4" }).upstreamConnections).toBe(4);
    expect(() => loadGatewayConfig({ GATEWAY_UPSTREAM_CONNECTIONS: "0" })).toThrow(
      /GATEWAY_UPSTREAM_CONNECTIONS/,
    );
  });

  it("should fail fast naming the variable and the value when a value is invalid", () => {
    expect(() => loadSubgraphConfig("users", { USERS_PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadSubgraphConfig("users", { USERS_PORT: "70000" })).toThrow(/USERS_PORT="70000"/);
    expect(() => loadGatewayConfig({ NODE_ENV: "prod" })).toThrow(/NODE_ENV="prod"/);
    expect(() => loadDiscoveryConfig({ DISCOVERY_LOCATION_MAX_AGE_MINUTES: "-5" })).toThrow(
      /DISCOVERY_LOCATION_MAX_AGE_MINUTES/,
    );
    expect(() => loadSubgraphConfig("media", { MEDIA_DATABASE_URL: "not a url" })).toThrow(
      /MEDIA_DATABASE_URL/,
    );
  });

  it("should treat an empty value as unset", () => {
    expect(loadSubgraphConfig("users", { USERS_PORT: "" }).port).toBe(4001);
  });

  it("should be documented: docs/configuration.md (generated by pnpm run docs:generate) lists every variable in the catalogue", () => {
    const reference = readFileSync(path.join(__dirname, "..", "..", "docs", "configuration.md"), "utf8");
    const missing = Object.keys(ENV_CATALOGUE).filter((name) => !reference.includes(`| \`${name}\` |`));
    expect(missing).toEqual([]);
  });

  it("should read TRUST_PROXY the way Express takes it and refuse what Express would not understand", () => {
    const trust = (value: string) => loadGatewayConfig({ TRUST_PROXY: value }).trustProxy;
    expect(trust("true")).toBe(true);
    expect(trust("false")).toBe(false);
    expect(trust("2")).toBe(2);
    expect(trust("loopback, 10.0.0.0/8 ,fd00::/8,192.168.0.0/255.255.0.0")).toBe(
      "loopback,10.0.0.0/8,fd00::/8,192.168.0.0/255.255.0.0",
    );
    expect(() => trust("10.0.0.0/33")).toThrow(/TRUST_PROXY/);
    expect(() => trust("the-load-balancer")).toThrow(/TRUST_PROXY.*the-load-balancer/);
  });

  it("should cap the access-token lifetime at 15 minutes", () => {
    const keys = JSON.stringify([generateSigningKeyJwk("k1")]);
    expect(loadUsersConfig({ AUTH_SIGNING_KEYS: keys }).accessTokens.ttlSeconds).toBe(900);
    expect(
      loadUsersConfig({ AUTH_SIGNING_KEYS: keys, AUTH_ACCESS_TOKEN_TTL_SECONDS: "300" }).accessTokens
        .ttlSeconds,
    ).toBe(300);
    expect(() => loadUsersConfig({ AUTH_SIGNING_KEYS: keys, AUTH_ACCESS_TOKEN_TTL_SECONDS: "901" })).toThrow(
      /AUTH_ACCESS_TOKEN_TTL_SECONDS/,
    );
  });
});

describe("Redis target: REDIS_URL or sentinels", () => {
  const sentinels = {
    REDIS_SENTINELS: "10.0.0.1:26379, sentinel-b.redis.svc:26380,[fd00::3]:26379",
    REDIS_SENTINEL_NAME: "hv-main",
  };

  it("should read the sentinels, the group name and their password, and keep REDIS_URL for the rest", () => {
    const target = loadRedisTarget({
      ...sentinels,
      REDIS_SENTINEL_PASSWORD: "s3ntinel",
      REDIS_URL: "redis://app:p%40ss@ignored:1/3",
    });
    expect(target).toEqual({
      url: "redis://app:p%40ss@ignored:1/3",
      sentinel: {
        sentinels: [
          { host: "10.0.0.1", port: 26379 },
          { host: "sentinel-b.redis.svc", port: 26380 },
          { host: "fd00::3", port: 26379 },
        ],
        name: "hv-main",
        password: "s3ntinel",
      },
    });
    expect(loadGatewayConfig(sentinels).redis.sentinel?.name).toBe("hv-main");
  });

  it("should turn a target into ioredis options: sentinels, name, and REDIS_URL's user, password and database", () => {
    const options = redisOptions(
      loadRedisTarget({
        ...sentinels,
        REDIS_SENTINEL_PASSWORD: "s3ntinel",
        REDIS_URL: "redis://app:p%40ss@ignored:1/3",
      }),
    );
    expect(options).toMatchObject({
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "sentinel-b.redis.svc", port: 26380 },
        { host: "fd00::3", port: 26379 },
      ],
      name: "hv-main",
      sentinelPassword: "s3ntinel",
      username: "app",
      password: "p@ss",
      db: 3,
    });
    expect(options).not.toHaveProperty("host");
    expect(options).not.toHaveProperty("maxRetriesPerRequest"); // BullMQ workers need null: each caller adds its own
    expect(redisOptions("rediss://:secret@[::1]:6380/2")).toEqual({
      host: "::1",
      port: 6380,
      tls: {},
      password: "secret",
      db: 2,
    });
    expect(redisOptions("redis://127.0.0.1:6379")).toEqual({ host: "127.0.0.1", port: 6379 });
  });

  it("should want both REDIS_SENTINELS and REDIS_SENTINEL_NAME, or neither", () => {
    expect(() => loadRedisTarget({ REDIS_SENTINELS: "127.0.0.1:26379" })).toThrow(ConfigError);
    expect(() => loadRedisTarget({ REDIS_SENTINELS: "127.0.0.1:26379" })).toThrow(
      /REDIS_SENTINELS is set without REDIS_SENTINEL_NAME/,
    );
    expect(() => loadSubgraphConfig("users", { REDIS_SENTINEL_NAME: "hv-main" })).toThrow(
      /REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/,
    );
    expect(() => loadRedisTarget({ REDIS_SENTINEL_PASSWORD: "x" })).toThrow(
      /REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS/,
    );
    expect(loadRedisTarget({ REDIS_SENTINELS: "", REDIS_SENTINEL_NAME: "" })).toEqual({
      url: "redis://127.0.0.1:6379",
      sentinel: null,
    });
  });

  it("should refuse sentinel addresses that are not host:port", () => {
    for (const bad of [
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "host:port",
      "::1:26379",
      "[not-ipv6]:26379",
      "a b:26379",
      "127.0.0.1:26379,",
      "redis://s:26379",
    ]) {
      expect(() => loadRedisTarget({ REDIS_SENTINELS: bad, REDIS_SENTINEL_NAME: "hv-main" })).toThrow(
        /^Invalid environment variable REDIS_SENTINELS=/,
      );
    }
    expect(() =>
      loadRedisTarget({ REDIS_SENTINELS: "127.0.0.1:26379,s:x", REDIS_SENTINEL_NAME: "hv-main" }),
    ).toThrow(/not understood: "s:x"/);
  });

  it("should refuse a bad group name, a URL ioredis would read differently, and TLS through Sentinel", () => {
    expect(() =>
      loadRedisTarget({ REDIS_SENTINELS: "127.0.0.1:26379", REDIS_SENTINEL_NAME: "hv main" }),
    ).toThrow(/REDIS_SENTINEL_NAME/);
    expect(() => loadRedisTarget({ REDIS_URL: "http://127.0.0.1:6379" })).toThrow(
      /REDIS_URL=.*redis: or rediss:/,
    );
    expect(() => loadRedisTarget({ REDIS_URL: "redis://127.0.0.1:6379/zero" })).toThrow(
      /REDIS_URL=.*database number/,
    );
    expect(() => loadRedisTarget({ REDIS_URL: "redis://127.0.0.1:6379?family=6" })).toThrow(
      /REDIS_URL=.*query/,
    );
    expect(() =>
      loadRedisTarget({
        REDIS_URL: "rediss://h:6380",
        REDIS_SENTINELS: "127.0.0.1:26379",
        REDIS_SENTINEL_NAME: "hv-main",
      }),
    ).toThrow(/REDIS_URL is rediss:\/\/ \(TLS\) while REDIS_SENTINELS is set/);
    expect(() =>
      loadRedisTarget({
        REDIS_SENTINELS: "127.0.0.1:26379",
        REDIS_SENTINEL_NAME: "hv-main",
        REDIS_SENTINEL_PASSWORD: "",
      }),
    ).not.toThrow();
  });

  it("should never repeat a URL's password in a start-up error, and still name the variable and show the rest", () => {
    const refused = (env: Record<string, string>) => {
      try {
        loadRedisTarget(env);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error("expected a refusal");
    };
    const message = refused({ REDIS_URL: "redis://app:hunter2@redis.internal:6379/zero" });
    expect(message).toMatch(
      /^Invalid environment variable REDIS_URL="redis:\/\/app:\*\*\*@redis\.internal:6379\/zero"/,
    );
    expect(message).not.toContain("hunter2");
    // A password with an unencoded "@" is masked whole, and so is one with no user before it.
    expect(refused({ REDIS_URL: "redis://:hun@ter2@h:6379?x=1" })).not.toMatch(/hun|ter2/);
  });
});

describe("access-token signing keys", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "hv-keys-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("should take every key from AUTH_SIGNING_KEYS, first one first", () => {
    const [a, b] = [generateSigningKeyJwk("a"), generateSigningKeyJwk("b")];
    const config = loadUsersConfig({ NODE_ENV: "production", AUTH_SIGNING_KEYS: JSON.stringify([a, b]) });
    expect(config.accessTokens.signingKeys).toEqual([a, b]);
  });

  it("should refuse to start in production without AUTH_SIGNING_KEYS, naming it", () => {
    expect(() =>
      loadUsersConfig({ NODE_ENV: "production" }, { devKeyFile: path.join(dir, "keys.json") }),
    ).toThrow(ConfigError);
    expect(() =>
      loadUsersConfig({ NODE_ENV: "production" }, { devKeyFile: path.join(dir, "keys.json") }),
    ).toThrow(/AUTH_SIGNING_KEYS/);
  });

  it("should explain a bad AUTH_SIGNING_KEYS without ever echoing the key material", () => {
    const key = generateSigningKeyJwk("a");
    const cases: Array<[unknown, RegExp]> = [
      ["{not json", /AUTH_SIGNING_KEYS is not valid JSON/],
      [[], /non-empty JSON array/],
      [[{ ...key, crv: "P-384" }], /P-256/],
      [[{ ...key, kid: undefined }], /kid/],
      [[key, { ...generateSigningKeyJwk("b"), kid: "a" }], /repeats the kid "a"/],
      [[{ ...key, d: undefined }], /private key/],
      [[{ ...key, x: generateSigningKeyJwk("c").x }], /AUTH_SIGNING_KEYS\[0\]/],
    ];
    for (const [value, message] of cases) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      let thrown: unknown;
      try {
        loadUsersConfig({ AUTH_SIGNING_KEYS: text });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain(key.d);
    }
  });

  it("should generate a development key once outside production and keep using it", () => {
    const file = path.join(dir, ".data", "dev-signing-keys.json");
    const first = loadUsersConfig({ NODE_ENV: "development" }, { devKeyFile: file }).accessTokens.signingKeys;
    const second = loadUsersConfig({ NODE_ENV: "test" }, { devKeyFile: file }).accessTokens.signingKeys;
    expect(first).toHaveLength(1);
    expect(second).toEqual(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
