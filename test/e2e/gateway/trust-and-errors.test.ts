import { randomUUID } from "node:crypto";
import { createAccessTokenIssuer, Redis, SessionRevocations } from "@hv/kit";
import { parse, type FieldNode, type OperationDefinitionNode } from "graphql";
import { useSystem } from "../../support/fixture";
import { graphqlRequest, type GraphQLResponse } from "../../support/system";
import type { SignedIn } from "../../support/users-client";

/**
 * Through the gateway, on the whole system: UNAUTHENTICATED has one HTTP status whatever the
 * cause, `extensions.field` is always a path into the operation's arguments, and a real
 * account's token carries its age, which Chat's spam signals read.
 */
describe("trust and errors through the gateway", () => {
  const fixture = useSystem({ CHAT_REQUIRE_MATCH: "false", CHAT_NEW_ACCOUNT_HOURS: "24" });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const MY_CONVERSATIONS = "{ conversations(first: 5) { edges { node { id } } } }";

  it("should answer UNAUTHENTICATED with 401 and a Bearer challenge for a missing, malformed, expired or revoked token", async () => {
    const { system, client } = fixture;
    const person = await client.signUp();
    const expiredToken = await createAccessTokenIssuer({
      keys: system.signingKeys,
      issuer: "haiyvee",
      audience: "haiyvee-api",
      ttlSeconds: 900,
      clock: () => new Date(Date.now() - 3600_000),
    }).issue({ userId: person.userId, sessionId: randomUUID(), role: "USER" });
    const revokedViewer = { userId: person.userId, sessionId: randomUUID(), role: "USER" as const };
    const { token: revokedToken } = await system.accessTokens.issue(revokedViewer);
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    try {
      await new SessionRevocations(redis).revokeSession(revokedViewer.sessionId);
    } finally {
      await redis.quit();
    }
    const causes: Record<string, Record<string, string>> = {
      missing: {},
      malformed: bearer("not-a-token"),
      expired: bearer(expiredToken.token),
      revoked: bearer(revokedToken),
    };
    const answers: Record<string, { status: number; code: unknown; challenge: string | null }> = {};
    for (const [cause, headers] of Object.entries(causes)) {
      const response = await graphqlRequest(system.gatewayUrl, MY_CONVERSATIONS, {}, headers);
      answers[cause] = {
        status: response.status,
        code: response.body.errors?.[0]?.extensions?.code,
        challenge: response.headers.get("www-authenticate"),
      };
    }
    expect(answers).toEqual({
      missing: { status: 401, code: "UNAUTHENTICATED", challenge: "Bearer" },
      malformed: { status: 401, code: "UNAUTHENTICATED", challenge: 'Bearer error="invalid_token"' },
      expired: { status: 401, code: "UNAUTHENTICATED", challenge: 'Bearer error="invalid_token"' },
      revoked: { status: 401, code: "UNAUTHENTICATED", challenge: 'Bearer error="invalid_token"' },
    });
    // The same request with the live token passes: only the token made the difference.
    expect(
      (await graphqlRequest(system.gatewayUrl, MY_CONVERSATIONS, {}, bearer(person.accessToken))).status,
    ).toBe(200);
  });

  /** Whether `field` is a path (`arg`, `arg.key`, `arg[0].key`) that names an argument of the operation's root field. */
  function resolvesInto(query: string, field: unknown): boolean {
    if (typeof field !== "string" || !/^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*$/.test(field)) return false;
    const operation = parse(query).definitions[0] as OperationDefinitionNode;
    const root = operation.selectionSet.selections[0] as FieldNode;
    const first = field.split(/[.[]/)[0];
    return (root.arguments ?? []).some((argument) => argument.name.value === first);
  }

  it("should name the wrong input with a path into the arguments in every subgraph", async () => {
    const { system, client } = fixture;
    const person: SignedIn = await client.signUp();
    const other: SignedIn = await client.signUp();
    const open = await graphqlRequest<any>(
      system.gatewayUrl,
      "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }",
      { u: other.userId },
      bearer(person.accessToken),
    );
    const conversationId = open.body.data?.openDirectConversation?.id;
    expect(conversationId).toEqual(expect.any(String));
    const cases: Array<{ query: string; variables: Record<string, unknown>; field: string }> = [
      // users
      {
        query: "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }",
        variables: { input: { displayName: " " } },
        field: "input.displayName",
      },
      {
        query: "mutation($p: String!) { deleteAccount(password: $p) }",
        variables: { p: "not the password at all" },
        field: "password",
      },
      {
        query: "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
        variables: {
          input: { currentPassword: "wrong wrong wrong", newPassword: "another long passphrase" },
        },
        field: "input.currentPassword",
      },
      // discovery
      {
        query: "mutation { updateLocation(latitude: 91, longitude: 0) { updatedAt } }",
        variables: {},
        field: "latitude",
      },
      // chat
      {
        query: "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        variables: { input: { conversationId, clientMessageId: "c1", text: "x".repeat(50_000) } },
        field: "input.text",
      },
      {
        query: "mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id } }",
        variables: { input: { title: "", memberIds: [other.userId] } },
        field: "input.title",
      },
      // media
      {
        query: "mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadUrl } }",
        variables: {
          input: { kind: "IMAGE", contentType: "text/html", byteSize: 10, purpose: "PROFILE_PHOTO" },
        },
        field: "input.contentType",
      },
    ];
    const seen: Array<{ field: unknown; resolves: boolean }> = [];
    for (const example of cases) {
      const response: GraphQLResponse = await graphqlRequest(
        system.gatewayUrl,
        example.query,
        example.variables,
        bearer(person.accessToken),
      );
      const field = response.body.errors?.[0]?.extensions?.field;
      seen.push({ field, resolves: resolvesInto(example.query, field) });
    }
    expect(seen).toEqual(cases.map((example) => ({ field: example.field, resolves: true })));
  });

  it("should put a real new account's token age to use: its links to a stranger raise a signal and are withheld", async () => {
    const { system, client, dbs } = fixture;
    const sender = await client.signUp();
    const claims = JSON.parse(Buffer.from(sender.accessToken.split(".")[1]!, "base64url").toString()) as {
      created?: unknown;
    };
    const created = claims.created;
    expect(typeof created).toBe("number");
    expect(Math.abs(Number(created) - Date.now() / 1000)).toBeLessThan(3600);
    // A refreshed token says the same: the account's age, not the session's.
    const refreshed = await client.refresh(sender.refreshToken);
    const again = refreshed.body.data?.refreshSession?.accessToken ?? "";
    expect(
      (JSON.parse(Buffer.from(again.split(".")[1] ?? "", "base64url").toString()) as { created?: unknown })
        .created,
    ).toBe(created);
    const stranger = await client.signUp();
    const open = await graphqlRequest<any>(
      system.gatewayUrl,
      "mutation($u: ID!) { openDirectConversation(userId: $u) { id } }",
      { u: stranger.userId },
      bearer(sender.accessToken),
    );
    const conversationId = open.body.data?.openDirectConversation?.id as string;
    const sent = await graphqlRequest<any>(
      system.gatewayUrl,
      "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq text } }",
      { input: { conversationId, clientMessageId: randomUUID(), text: "free coins at www.example.com" } },
      bearer(sender.accessToken),
    );
    expect(sent.body.errors).toBeUndefined();
    const history = "query($c: ID!) { messages(conversationId: $c) { messages { id text } } }";
    const mine = await graphqlRequest<any>(
      system.gatewayUrl,
      history,
      { c: conversationId },
      bearer(sender.accessToken),
    );
    expect(mine.body.data?.messages?.messages).toEqual([
      { id: sent.body.data?.sendMessage?.id, text: "free coins at www.example.com" },
    ]);
    const theirs = await graphqlRequest<any>(
      system.gatewayUrl,
      history,
      { c: conversationId },
      bearer(stranger.accessToken),
    );
    expect(theirs.body.data?.messages?.messages).toEqual([]);
    const signals = await dbs.chat.outboxEvent.findMany({ where: { type: "safety.signal_raised" } });
    expect(signals.map((row) => row.payload)).toContainEqual(
      expect.objectContaining({ userId: sender.userId, signal: "LINKS_FROM_NEW_ACCOUNT" }),
    );
  });
});
