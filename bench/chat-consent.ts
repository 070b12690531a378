/**
 * Chat's consent path on one Chat instance over HTTP, without the gateway.
 *
 *   pnpm exec tsx bench/chat-consent.ts [--groups 200] [--invitees 5] [--concurrency 8] [--keep]
 *
 * Chat runs as its own process (built, as deployed; BENCH_RUN=source: node --import tsx subgraphs/chat/src/index.ts) on a database of its
 * own, verifying tokens against a JWKS endpoint served by this process. Seeded with SQL: Chat's copy
 * of every account (`people`, as Users' user.profile_changed leaves it) and, per owner, one match
 * (the DIRECT conversation match.created opens). Three closed-loop phases, each reported with Chat's
 * CPU per operation: `groups` createGroupConversation (the match plus `invitees` people to invite),
 * then each invitee's myInvitations, then each invitee's acceptInvitation.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { generateSigningKeyJwk, publicSigningKeyJwk } from "@hv/kit";
import { createChatDb } from "@hv/chat/src/db";
import { flag } from "./support/args";
import {
  benchDatabase,
  benchTokenIssuer,
  closedLoop,
  describeLoop,
  dropUnlessKept,
  expectData,
  freePort,
  jsonClient,
  printHeader,
  runBench,
  startChild,
  stopChild,
} from "./support/service";

async function main(): Promise<void> {
  const groups = Math.max(1, flag("groups", 200));
  const invitees = Math.max(1, flag("invitees", 5));
  const concurrency = Math.max(1, flag("concurrency", 8));
  const keep = process.argv.includes("--keep");
  const stamp = Date.now().toString(36);
  printHeader("chat-consent.ts");

  const databaseUrl = await benchDatabase("chat", "consent", stamp);
  const db = createChatDb(databaseUrl);
  const key = generateSigningKeyJwk("bench-consent");
  const jwks = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [publicSigningKeyJwk(key)] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const port = await freePort();
  const client = jsonClient(concurrency);
  let child: Awaited<ReturnType<typeof startChild>> | undefined;
  try {
    const owners = Array.from({ length: groups }, () => randomUUID());
    const friends = owners.map(() => randomUUID());
    const guests = owners.map(() => Array.from({ length: invitees }, () => randomUUID()));
    const everyone = [...owners, ...friends, ...guests.flat()];
    await db.$executeRawUnsafe(
      `INSERT INTO people (user_id, visible, banned, event_at) SELECT id::uuid, true, false, now() FROM unnest($1::text[]) AS t(id)`,
      everyone,
    );
    const directs = owners.map((owner, index) => ({ id: randomUUID(), owner, friend: friends[index]! }));
    await db.$executeRawUnsafe(
      `INSERT INTO conversations (id, kind, direct_key, match_id)
       SELECT id::uuid, 'DIRECT', CASE WHEN o < f THEN o || ':' || f ELSE f || ':' || o END, gen_random_uuid()
         FROM unnest($1::text[], $2::text[], $3::text[]) AS t(id, o, f)`,
      directs.map((d) => d.id),
      directs.map((d) => d.owner),
      directs.map((d) => d.friend),
    );
    await db.$executeRawUnsafe(
      `INSERT INTO conversation_members (conversation_id, user_id) SELECT c::uuid, u::uuid FROM unnest($1::text[], $2::text[]) AS t(c, u)`,
      directs.flatMap((d) => [d.id, d.id]),
      directs.flatMap((d) => [d.owner, d.friend]),
    );
    const issuer = benchTokenIssuer(key);
    const tokens = new Map<string, string>();
    for (const userId of everyone)
      tokens.set(userId, (await issuer.issue({ userId, sessionId: randomUUID(), role: "USER" })).token);

    child = await startChild(
      "subgraphs/chat/src/index.ts",
      {
        CHAT_DATABASE_URL: databaseUrl,
        CHAT_PORT: String(port),
        AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
        EVENTS_PREFIX: `hvbench${stamp}`,
        CHAT_INVITATIONS_PER_DAY: "100000",
        CHAT_PENDING_INVITATIONS_MAX: "100000",
      },
      `http://127.0.0.1:${port}/readyz`,
    );
    const url = `http://127.0.0.1:${port}/graphql`;
    const gql = <T>(who: string, query: string, variables: Record<string, unknown> = {}) =>
      client
        .post<{ data?: T | null; errors?: Array<{ message?: string; extensions?: { code?: string } }> }>(
          url,
          { query, variables },
          { authorization: `Bearer ${tokens.get(who)}` },
        )
        .then(expectData);

    // Warm-up (JIT, pools): one group of one owner's match, not counted.
    await gql(owners[0]!, `query { myInvitations { edges { node { id } } } }`);

    const groupIds: string[] = [];
    const created = await closedLoop(groups, concurrency, child.pid!, async (index) => {
      const data = await gql<{ createGroupConversation: { id: string; memberCount: number } }>(
        owners[index]!,
        `mutation($input: CreateGroupInput!) { createGroupConversation(input: $input) { id memberCount } }`,
        { input: { title: `bench ${index}`, memberIds: [friends[index], ...guests[index]!] } },
      );
      if (data.createGroupConversation.memberCount !== 2) throw new Error("the match did not join at once");
      groupIds[index] = data.createGroupConversation.id;
    });
    console.log(describeLoop(`createGroupConversation (1 match + ${invitees} invited)`, created, "Chat"));

    const pairs = guests.flatMap((list, group) => list.map((guest) => ({ guest, group })));
    const invitationOf = new Map<string, string>();
    const listed = await closedLoop(pairs.length, concurrency, child.pid!, async (index) => {
      const { guest, group } = pairs[index]!;
      const data = await gql<{
        myInvitations: { edges: Array<{ node: { id: string; conversationId: string } }> };
      }>(guest, `query { myInvitations { edges { node { id conversationId title inviter { id } } } } }`);
      const invitation = data.myInvitations.edges.find(
        (edge) => edge.node.conversationId === groupIds[group],
      );
      if (!invitation) throw new Error("no invitation listed");
      invitationOf.set(guest, invitation.node.id);
    });
    console.log(describeLoop("myInvitations", listed, "Chat"));

    const accepted = await closedLoop(pairs.length, concurrency, child.pid!, async (index) => {
      const { guest } = pairs[index]!;
      await gql(guest, `mutation($i: ID!) { acceptInvitation(invitationId: $i) { id memberCount } }`, {
        i: invitationOf.get(guest),
      });
    });
    console.log(describeLoop("acceptInvitation", accepted, "Chat"));
  } finally {
    client.close();
    await stopChild(child);
    await db.$disconnect();
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
    await dropUnlessKept(databaseUrl, keep);
  }
}

runBench(main);
