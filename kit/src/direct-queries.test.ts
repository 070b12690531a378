import type http from "node:http";
import { directRequestOf } from "./direct-queries";

const HASH = "a".repeat(64);
const persisted = (fields: Record<string, unknown> = {}) => ({
  persistedQuery: { version: 1, sha256Hash: HASH, ...fields },
});
const post = { method: "POST", headers: { "content-type": "application/json" } } as http.IncomingMessage;

describe("directRequestOf", () => {
  it("should read a text, a hash alone and a text beside its hash", () => {
    expect(directRequestOf(post, { query: "{ a }" })).toEqual({
      query: "{ a }",
      variables: {},
      operationName: undefined,
    });
    expect(
      directRequestOf(post, { extensions: persisted(), variables: { x: 1 }, operationName: "A" }),
    ).toEqual({
      query: undefined,
      persistedHash: HASH,
      variables: { x: 1 },
      operationName: "A",
    });
    expect(directRequestOf(post, { query: null, extensions: persisted() })?.query).toBeUndefined();
    expect(directRequestOf(post, { query: "{ a }", extensions: persisted() })).toMatchObject({
      query: "{ a }",
      persistedHash: HASH,
    });
  });

  it("should leave to Apollo what it reads otherwise or refuses", () => {
    const leftToApollo = [
      // Another extension, another version, another field of persistedQuery.
      { extensions: { ...persisted(), other: true } },
      { extensions: { persistedQuery: { version: 2, sha256Hash: HASH } } },
      { extensions: persisted({ extra: 1 }) },
      { extensions: { persistedQuery: { version: 1 } } },
      // Apollo checks "" against the hash; a text that is not a string.
      { query: "", extensions: persisted() },
      { query: 5, extensions: persisted() },
      // Variables or a name Apollo refuses.
      { extensions: persisted(), variables: "{}" },
      { extensions: persisted(), operationName: 5 },
    ];
    for (const body of leftToApollo)
      expect({ body, read: directRequestOf(post, body) }).toEqual({ body, read: undefined });
    const get = { method: "GET", headers: {} } as http.IncomingMessage;
    expect(directRequestOf(get, { extensions: persisted() })).toBeUndefined();
    const traced = {
      method: "POST",
      headers: { ...post.headers, "apollo-federation-include-trace": "ftv1" },
    };
    expect(
      directRequestOf(traced as unknown as http.IncomingMessage, { extensions: persisted() }),
    ).toBeUndefined();
  });
});
