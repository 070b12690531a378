import { randomUUID } from "node:crypto";
import { outboxEventData } from "@hv/kit";
import { useSystem } from "../../support/fixture";
import type { GraphQLResponse } from "../../support/system";
import { errorCode, type SignedIn } from "../../support/users-client";
import { phone, Subscription } from "../gateway/harness";
import { eventually, NEARBY, placeAt } from "../discovery/nearby-support";
import { jpegWithGps, mediaClient } from "../media/media-support";

/**
 * The moderation queue and the moderator API, through the gateway as the internal tool (Apollo
 * Sandbox) and the phones use it; the effects of each action are checked in the subgraph that
 * carries them out, through its own API.
 */
describe("moderation queue", () => {
  // Chat lets anyone open a direct conversation here (no match needed) to have messages to report.
  const fixture = useSystem({ CHAT_REQUIRE_MATCH: "false", MODERATION_CLAIM_SECONDS: "600" });

  const CASE_FIELDS = `id targetKind targetId targetUserId status priority distinctReporters signals snapshot claimedBy claimExpiresAt
    action actionReason actionUntil resolvedBy reports { id reporterId reason details signal snapshot }`;
  const CASES = `query($first: Int, $after: String) { moderationCases(first: $first, after: $after) { cases { ${CASE_FIELDS} } nextCursor } }`;
  const CASE = `query($id: ID!) { moderationCase(id: $id) { ${CASE_FIELDS} media { id url } } }`;
  const CLAIM = `mutation($id: ID!) { claimModerationCase(caseId: $id) { id claimedBy claimExpiresAt } }`;
  const RESOLVE = `mutation($input: ResolveModerationCaseInput!) { resolveModerationCase(input: $input) { id status action actionReason actionUntil } }`;
  const AUDIT = `query($caseId: ID, $first: Int, $after: String) { moderationAuditLog(caseId: $caseId, first: $first, after: $after) { entries { id at moderatorId caseId what reason targetKind targetId until } nextCursor } }`;
  const REPORT_USER = `mutation($input: ReportUserInput!) { reportUser(input: $input) { id } }`;
  const MY_REPORTS = `{ myReports { id targetKind targetId reason status handledAt } }`;

  interface Case {
    id: string;
    targetKind: string;
    targetId: string;
    targetUserId: string;
    status: string;
    priority: number;
    distinctReporters: number;
    signals: number;
    snapshot: string | null;
    claimedBy: string | null;
    action: string | null;
    reports: Array<{
      reporterId: string | null;
      reason: string;
      signal: string | null;
      snapshot: string | null;
    }>;
    media?: { id: string; url: string | null } | null;
  }

  const send = <T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    who?: SignedIn | null,
  ): Promise<GraphQLResponse<T>> => fixture.client.request<T>(query, variables, who?.accessToken);

  async function ok<T>(query: string, variables: Record<string, unknown>, who?: SignedIn | null): Promise<T> {
    const response = await send<T>(query, variables, who);
    if (response.body.errors || !response.body.data) throw new Error(JSON.stringify(response.body.errors));
    return response.body.data;
  }

  /** A real account promoted to MODERATOR in Users' database, then signed in (the role is in its token). */
  async function moderator(): Promise<SignedIn> {
    const person = await fixture.client.signUp();
    await fixture.dbs.users.user.update({ where: { id: person.userId }, data: { role: "MODERATOR" } });
    const session = (await fixture.client.logIn(person.email, person.password)).body.data?.logIn;
    if (!session) throw new Error("moderator login failed");
    return { ...person, accessToken: session.accessToken, refreshToken: session.refreshToken };
  }

  async function reportUser(reporter: SignedIn, userId: string, reason = "HARASSMENT", details?: string) {
    return ok<{ reportUser: { id: string } }>(
      REPORT_USER,
      { input: { userId, reason, ...(details ? { details } : {}) } },
      reporter,
    );
  }

  async function openCases(mod: SignedIn): Promise<Case[]> {
    const all: Case[] = [];
    let after: string | null = null;
    for (let page = 0; page < 100; page += 1) {
      const data: { moderationCases: { cases: Case[]; nextCursor: string | null } } = await ok(
        CASES,
        { first: 2, after },
        mod,
      );
      all.push(...data.moderationCases.cases);
      after = data.moderationCases.nextCursor;
      if (!after) break;
    }
    return all;
  }

  async function caseOf(mod: SignedIn, targetId: string): Promise<Case | undefined> {
    return (await openCases(mod)).find((found) => found.targetId === targetId);
  }

  it("should refuse every moderator operation to users (FORBIDDEN) and to anonymous callers (UNAUTHENTICATED)", async () => {
    const user = await fixture.client.signUp();
    const someCase = randomUUID();
    for (const [query, variables] of [
      [CASES, {}],
      [CASE, { id: someCase }],
      [AUDIT, {}],
      [CLAIM, { id: someCase }],
      [RESOLVE, { input: { caseId: someCase, action: "BAN", reason: "x" } }],
      [`mutation($id: ID!) { banUser(userId: $id) }`, { id: randomUUID() }],
    ] as const) {
      expect({ query, code: errorCode(await send(query, variables, user)) }).toEqual({
        query,
        code: "FORBIDDEN",
      });
      expect({ query, code: errorCode(await send(query, variables, null)) }).toEqual({
        query,
        code: "UNAUTHENTICATED",
      });
    }
    expect(errorCode(await send(MY_REPORTS, {}, null))).toBe("UNAUTHENTICATED");
  });

  it("should group reports by target, count distinct reporters and order cases by priority with keyset pages", async () => {
    const mod = await moderator();
    const [a, b, c, target, other] = (await Promise.all(
      [1, 2, 3, 4, 5].map(() => fixture.client.signUp()),
    )) as [SignedIn, SignedIn, SignedIn, SignedIn, SignedIn];
    await reportUser(a, target.userId);
    await reportUser(b, target.userId, "SPAM");
    await reportUser(a, target.userId, "SCAM"); // a again: still two distinct reporters
    await reportUser(c, other.userId);
    // A spam signal from Chat, through Chat's outbox and the event relay: a system report on `other`.
    await fixture.dbs.chat.outboxEvent.create({
      data: outboxEventData("safety.signal_raised", {
        userId: other.userId,
        signal: "REPEATED_TEXT",
        detail: "same text to 12 conversations",
        at: new Date().toISOString(),
      }),
    });

    const targetCase = await eventually(async () => caseOf(mod, target.userId));
    expect(targetCase).toMatchObject({
      targetKind: "USER",
      targetUserId: target.userId,
      status: "OPEN",
      distinctReporters: 2,
      signals: 0,
    });
    expect(targetCase.reports.map((report) => report.reporterId)).toEqual([a.userId, b.userId, a.userId]);
    // Young account (< 7 days): 10; two reporters: 20.
    expect(targetCase.priority).toBe(30);
    const otherCase = await eventually(async () => {
      const found = await caseOf(mod, other.userId);
      return found && found.signals === 1 ? found : null;
    });
    expect(otherCase).toMatchObject({ distinctReporters: 1, signals: 1, priority: 10 + 5 + 10 });
    expect(otherCase.reports.find((report) => report.reporterId === null)).toMatchObject({
      reason: "SPAM",
      signal: "REPEATED_TEXT",
    });

    // Pages of two, highest priority first; ties by age: nothing lost or repeated across pages.
    const all = await openCases(mod);
    expect(new Set(all.map((found) => found.id)).size).toBe(all.length);
    for (let i = 1; i < all.length; i += 1)
      expect(all[i - 1]!.priority).toBeGreaterThanOrEqual(all[i]!.priority);
    expect(all.findIndex((found) => found.id === targetCase.id)).toBeLessThan(
      all.findIndex((found) => found.id === otherCase.id),
    );
  });

  it("should refuse wrong, missing, oversized and hostile input with typed codes", async () => {
    const mod = await moderator();
    const [reporter, target] = await Promise.all([fixture.client.signUp(), fixture.client.signUp()]);
    await reportUser(reporter, target.userId);
    const found = await eventually(async () => caseOf(mod, target.userId));
    const resolve = (input: Record<string, unknown>) =>
      send(RESOLVE, { input: { caseId: found.id, action: "WARN", reason: "r", ...input } }, mod);
    const fieldOf = (response: GraphQLResponse) => response.body.errors?.[0]?.extensions?.field;

    for (const [input, field] of [
      [{ caseId: "not-a-uuid" }, "input.caseId"],
      [{ caseId: "' OR 1=1 --" }, "input.caseId"],
      [{ reason: "x".repeat(1001) }, "input.reason"],
      [{ reason: "   " }, "input.reason"],
      [{ reason: "hidden\u202etext" }, "input.reason"],
      [{ action: "SUSPEND" }, "input.suspendHours"],
      [{ action: "SUSPEND", suspendHours: 0 }, "input.suspendHours"],
      [{ action: "SUSPEND", suspendHours: 8761 }, "input.suspendHours"],
      [{ action: "WARN", suspendHours: 5 }, "input.suspendHours"],
      [{ action: "REMOVE_MESSAGE" }, "input.action"],
      [{ action: "REMOVE_MEDIA" }, "input.action"],
    ] as const) {
      const response = await resolve(input);
      expect({ input, code: errorCode(response), field: fieldOf(response) }).toEqual({
        input,
        code: "BAD_USER_INPUT",
        field,
      });
    }
    // Not in the schema at all: refused before any resolver.
    expect(errorCode(await resolve({ action: "DELETE_EVERYTHING" }))).toMatch(
      /BAD_USER_INPUT|GRAPHQL_VALIDATION_FAILED/,
    );
    expect(errorCode(await send(RESOLVE, { input: { caseId: found.id, action: "WARN" } }, mod))).toMatch(
      /BAD_USER_INPUT|GRAPHQL_VALIDATION_FAILED/,
    );
    // An unknown case.
    expect(errorCode(await send(CLAIM, { id: randomUUID() }, mod))).toBe("NOT_FOUND");
    // Cursors and page sizes.
    for (const [variables, field] of [
      [{ after: "garbage" }, "after"],
      [
        { after: Buffer.from(JSON.stringify([1, "not a date", randomUUID()])).toString("base64url") },
        "after",
      ],
      [{ after: "x".repeat(500) }, "after"],
      [{ first: 0 }, "first"],
      [{ first: 101 }, "first"],
    ] as const) {
      const response = await send(CASES, variables, mod);
      expect({ variables, code: errorCode(response), field: fieldOf(response) }).toEqual({
        variables,
        code: "BAD_USER_INPUT",
        field,
      });
    }
    // The case was left as it was by all of this.
    expect((await ok<{ moderationCase: Case }>(CASE, { id: found.id }, mod)).moderationCase.status).toBe(
      "OPEN",
    );
    // reportUser's details are bounded too.
    expect(
      errorCode(
        await send(
          REPORT_USER,
          { input: { userId: target.userId, reason: "SPAM", details: "y".repeat(1001) } },
          reporter,
        ),
      ),
    ).toBe("BAD_USER_INPUT");
  });

  it("should let exactly one of two racing moderators claim a case, and only the holder resolve it", async () => {
    const [first, second] = await Promise.all([moderator(), moderator()]);
    const [reporter, target] = await Promise.all([fixture.client.signUp(), fixture.client.signUp()]);
    await reportUser(reporter, target.userId);
    const found = await eventually(async () => caseOf(first, target.userId));

    const results = await Promise.all([
      send(CLAIM, { id: found.id }, first),
      send(CLAIM, { id: found.id }, second),
    ]);
    const winners = results.filter((response) => !response.body.errors);
    const losers = results.filter((response) => response.body.errors);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(errorCode(losers[0]!)).toBe("CASE_CLAIMED");
    expect(losers[0]!.body.errors?.[0]?.extensions?.until).toEqual(expect.any(String));
    const holder = winners[0] === results[0] ? first : second;
    const other = holder === first ? second : first;

    expect(
      errorCode(
        await send(RESOLVE, { input: { caseId: found.id, action: "DISMISS", reason: "not mine" } }, other),
      ),
    ).toBe("CASE_CLAIMED");
    // The holder claims again (renews), then dismisses; a second resolution finds it resolved.
    await ok(CLAIM, { id: found.id }, holder);
    await ok(RESOLVE, { input: { caseId: found.id, action: "DISMISS", reason: "no violation" } }, holder);
    expect(
      errorCode(await send(RESOLVE, { input: { caseId: found.id, action: "BAN", reason: "again" } }, holder)),
    ).toBe("CASE_CLAIMED");
    expect(errorCode(await send(CLAIM, { id: found.id }, other))).toBe("CASE_CLAIMED");

    // A claim that has expired (moved into the past here) no longer holds a case: another moderator takes it.
    await reportUser(reporter, target.userId);
    const reopened = await eventually(async () => caseOf(first, target.userId));
    await ok(CLAIM, { id: reopened.id }, holder);
    expect(errorCode(await send(CLAIM, { id: reopened.id }, other))).toBe("CASE_CLAIMED");
    await fixture.dbs.users.moderationCase.update({
      where: { id: reopened.id },
      data: { claimExpiresAt: new Date(Date.now() - 1000) },
    });
    expect(
      (await ok<{ claimModerationCase: { claimedBy: string } }>(CLAIM, { id: reopened.id }, other))
        .claimModerationCase.claimedBy,
    ).toBe(other.userId);

    // The audit log: two claims by the holder and the dismissal, newest first, with who and why.
    const audit = (
      await ok<{ moderationAuditLog: { entries: Array<Record<string, unknown>> } }>(
        AUDIT,
        { caseId: found.id },
        other,
      )
    ).moderationAuditLog.entries;
    expect(audit.map((entry) => [entry.what, entry.moderatorId, entry.reason])).toEqual([
      ["DISMISS", holder.userId, "no violation"],
      ["CLAIM", holder.userId, null],
      ["CLAIM", holder.userId, null],
    ]);
    // Append-only in the database itself.
    await expect(
      fixture.dbs.users.moderationAuditEntry.updateMany({
        where: { caseId: found.id },
        data: { reason: "rewritten" },
      }),
    ).rejects.toThrow(/append-only/);
    await expect(
      fixture.dbs.users.moderationAuditEntry.deleteMany({ where: { caseId: found.id } }),
    ).rejects.toThrow(/append-only/);
  });

  it("should suspend: sessions end, login answers ACCOUNT_SUSPENDED, the account leaves nearby and matches; the reporter sees ACTIONED", async () => {
    const mod = await moderator();
    const [reporter, target, looker, matcher] = (await Promise.all(
      [1, 2, 3, 4].map(() => fixture.client.signUp()),
    )) as [SignedIn, SignedIn, SignedIn, SignedIn];
    // Each other's type (set in Users, carried to Discovery by events), side by side.
    for (const [who, gender, wants] of [
      [target, "WOMAN", "MAN"],
      [looker, "MAN", "WOMAN"],
      [matcher, "MAN", "WOMAN"],
    ] as const) {
      await ok(
        `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }`,
        { input: { gender, gendersOfInterest: [wants] } },
        who,
      );
      await eventually(
        async () =>
          (await fixture.dbs.discovery.discoveryProfile.findUnique({ where: { userId: who.userId } }))
            ?.gender === gender,
      );
    }
    await placeAt(fixture.dbs, target.userId, 48.8566, 2.3522);
    await placeAt(fixture.dbs, looker.userId, 48.8567, 2.3523);
    await placeAt(fixture.dbs, matcher.userId, 48.8567, 2.3523);
    const nearbyIds = async () =>
      (
        await ok<{ nearby: { edges: Array<{ node: { id: string } }> } }>(NEARBY, { first: 50 }, looker)
      ).nearby.edges.map((edge) => edge.node.id);
    expect(await nearbyIds()).toContain(target.userId);
    // `looker` only looks; `matcher` and the target liked each other.
    const LIKE = `mutation($u: ID!) { like(userId: $u) { matched } }`;
    await ok(LIKE, { u: target.userId }, matcher);
    expect((await ok<{ like: { matched: boolean } }>(LIKE, { u: matcher.userId }, target)).like.matched).toBe(
      true,
    );
    const matchedIds = async () =>
      (
        await ok<{ matches: { edges: Array<{ node: { user: { id: string } } }> } }>(
          `{ matches(first: 50) { edges { node { user { id } } } } }`,
          {},
          matcher,
        )
      ).matches.edges.map((edge) => edge.node.user.id);
    expect(await matchedIds()).toEqual([target.userId]);

    const receipt = await reportUser(reporter, target.userId, "HARASSMENT", "threats");
    expect(
      (await ok<{ myReports: Array<Record<string, unknown>> }>(MY_REPORTS, {}, reporter)).myReports,
    ).toEqual([
      {
        id: receipt.reportUser.id,
        targetKind: "USER",
        targetId: target.userId,
        reason: "HARASSMENT",
        status: "OPEN",
        handledAt: null,
      },
    ]);
    const found = await eventually(async () => caseOf(mod, target.userId));
    await ok(CLAIM, { id: found.id }, mod);
    const resolved = (
      await ok<{ resolveModerationCase: { status: string; actionUntil: string } }>(
        RESOLVE,
        { input: { caseId: found.id, action: "SUSPEND", reason: "threats in chat", suspendHours: 24 } },
        mod,
      )
    ).resolveModerationCase;
    expect(resolved.status).toBe("ACTIONED");

    // Sessions end at once, and login is refused with the end of the suspension.
    expect(errorCode(await fixture.client.me(target.accessToken))).toBe("UNAUTHENTICATED");
    const login = await fixture.client.logIn(target.email, target.password);
    expect(errorCode(login)).toBe("ACCOUNT_SUSPENDED");
    expect(login.body.errors?.[0]?.extensions?.until).toBe(resolved.actionUntil);
    // Discovery hides the account (through the events): gone from nearby and from the other's matches.
    await eventually(async () => !(await nearbyIds()).includes(target.userId));
    await eventually(async () => (await matchedIds()).length === 0);

    // The reporter sees it handled, and nothing of what was done.
    const mine = (await ok<{ myReports: Array<Record<string, unknown>> }>(MY_REPORTS, {}, reporter))
      .myReports;
    expect(mine[0]).toMatchObject({ status: "ACTIONED", handledAt: expect.any(String) });
    expect(Object.keys(mine[0]!).sort()).toEqual([
      "handledAt",
      "id",
      "reason",
      "status",
      "targetId",
      "targetKind",
    ]);

    // Once the suspension is over (moved into the past here), the next login clears it and shows the account again.
    await fixture.dbs.users.user.update({
      where: { id: target.userId },
      data: { suspendedUntil: new Date(Date.now() - 1000) },
    });
    expect((await fixture.client.logIn(target.email, target.password)).body.data?.logIn.user.id).toBe(
      target.userId,
    );
    await eventually(async () => (await nearbyIds()).includes(target.userId));
    await eventually(async () => (await matchedIds()).includes(target.userId));
  });

  it("should remove a reported message for every member (MESSAGE_DELETED), with the message's snapshot in the case", async () => {
    const mod = await moderator();
    const [sender, member] = await Promise.all([fixture.client.signUp(), fixture.client.signUp()]);
    const conversation = await ok<{ openDirectConversation: { id: string } }>(
      `mutation($u: ID!) { openDirectConversation(userId: $u) { id } }`,
      { u: member.userId },
      sender,
    );
    const conversationId = conversation.openDirectConversation.id;
    const sent = await ok<{ sendMessage: { id: string } }>(
      `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`,
      { input: { conversationId, clientMessageId: randomUUID(), text: "send me your bank details" } },
      sender,
    );
    const messageId = sent.sendMessage.id;
    // Hostile input to reportMessage first: nothing is filed.
    const REPORT_MESSAGE = `mutation($m: ID!, $n: String) { reportMessage(messageId: $m, reason: SCAM, note: $n) }`;
    expect(errorCode(await send(REPORT_MESSAGE, { m: messageId, n: "z".repeat(1001) }, member))).toBe(
      "BAD_USER_INPUT",
    );
    expect(errorCode(await send(REPORT_MESSAGE, { m: messageId, n: "bell\u0007" }, member))).toBe(
      "BAD_USER_INPUT",
    );
    await ok(
      `mutation($m: ID!) { reportMessage(messageId: $m, reason: SCAM, note: "asks for money") }`,
      { m: messageId },
      member,
    );

    const found = await eventually(async () => caseOf(mod, messageId));
    expect(found).toMatchObject({ targetKind: "MESSAGE", targetUserId: sender.userId, distinctReporters: 1 });
    expect(JSON.parse(found.snapshot ?? "{}")).toMatchObject({
      messageId,
      conversationId,
      senderId: sender.userId,
      text: "send me your bank details",
    });
    expect(found.reports[0]).toMatchObject({ reporterId: member.userId, reason: "SCAM" });
    expect(
      (await ok<{ myReports: Array<{ targetKind: string; targetId: string }> }>(MY_REPORTS, {}, member))
        .myReports[0],
    ).toMatchObject({ targetKind: "MESSAGE", targetId: messageId });

    // The member's phone is subscribed through the gateway, live (its own DELIVERED marker came back).
    const memberPhone = phone(fixture.system.gatewayUrl.replace(/^http/, "ws"), {
      authorization: `Bearer ${member.accessToken}`,
    });
    type Feed = {
      myChatEvents: {
        kind: string;
        actor: { id: string } | null;
        message: { id: string; deleted: boolean } | null;
      };
    };
    const feed = new Subscription<Feed>(
      memberPhone.client,
      `subscription { myChatEvents { kind actor { id } message { id deleted } } }`,
    );
    try {
      for (
        let attempt = 0;
        attempt < 200 && !feed.results.some((r) => r.data?.myChatEvents.kind === "DELIVERED");
        attempt += 1
      ) {
        await send(
          `mutation($c: ID!) { markDelivered(conversationId: $c, seq: 0) }`,
          { c: conversationId },
          member,
        );
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await ok(RESOLVE, { input: { caseId: found.id, action: "REMOVE_MESSAGE", reason: "scam" } }, mod);
      await feed.until(
        () => feed.results.some((r) => r.data?.myChatEvents.kind === "MESSAGE_DELETED"),
        "MESSAGE_DELETED",
      );
      const deletedEvent = feed.results.find((r) => r.data?.myChatEvents.kind === "MESSAGE_DELETED")?.data
        ?.myChatEvents;
      expect(deletedEvent?.message).toEqual({ id: messageId, deleted: true });
    } finally {
      feed.dispose();
      await memberPhone.client.dispose();
    }
    const MESSAGES = `query($c: ID!) { messages(conversationId: $c) { messages { id text deleted } } }`;
    for (const who of [member, sender]) {
      const removed = await eventually(async () => {
        const messages = (
          await ok<{ messages: { messages: Array<{ id: string; text: string | null; deleted: boolean }> } }>(
            MESSAGES,
            { c: conversationId },
            who,
          )
        ).messages.messages;
        const message = messages.find((m) => m.id === messageId);
        return message?.deleted ? message : null;
      });
      expect(removed).toEqual({ id: messageId, text: null, deleted: true });
    }
  });

  it("should let moderators see reported media through signed URLs, then stop serving it once removed", async () => {
    const mod = await moderator();
    const [owner, reporter] = await Promise.all([fixture.client.signUp(), fixture.client.signUp()]);
    const media = mediaClient(fixture);
    const photo = await media.upload(owner, await jpegWithGps(400, 300), {
      kind: "IMAGE",
      contentType: "image/jpeg",
      purpose: "CHAT_ATTACHMENT",
    });
    expect(photo.status).toBe("READY");
    const REPORT_MEDIA = `mutation($m: ID!, $r: MediaReportReason!, $n: String) { reportMedia(mediaId: $m, reason: $r, note: $n) }`;
    // A chat attachment the reporter was never granted: NOT_FOUND (it does not exist for them). Bad input: typed.
    expect(errorCode(await send(REPORT_MEDIA, { m: photo.id, r: "INAPPROPRIATE_CONTENT" }, reporter))).toBe(
      "NOT_FOUND",
    );
    expect(errorCode(await send(REPORT_MEDIA, { m: "nope", r: "SPAM" }, reporter))).toBe("BAD_USER_INPUT");
    expect(errorCode(await send(REPORT_MEDIA, { m: photo.id, r: "SPAM" }, owner))).toBe("BAD_USER_INPUT");
    // On the owner's profile, anyone may see it, so anyone may report it.
    const profilePhoto = await media.upload(owner, await jpegWithGps(400, 300), {
      kind: "IMAGE",
      contentType: "image/jpeg",
    });
    await ok(`mutation($id: ID!) { addProfilePhoto(mediaId: $id) { id } }`, { id: profilePhoto.id }, owner);
    expect(
      errorCode(await send(REPORT_MEDIA, { m: profilePhoto.id, r: "SPAM", n: "\u0007bell" }, reporter)),
    ).toBe("BAD_USER_INPUT");
    await ok(REPORT_MEDIA, { m: profilePhoto.id, r: "INAPPROPRIATE_CONTENT", n: "nudity" }, reporter);

    const found = await eventually(async () => caseOf(mod, profilePhoto.id));
    expect(found).toMatchObject({ targetKind: "MEDIA", targetUserId: owner.userId });
    const snapshot = JSON.parse(found.snapshot ?? "{}") as { variantKeys: string[]; kind: string };
    expect(snapshot.kind).toBe("IMAGE");
    expect(snapshot.variantKeys.length).toBeGreaterThan(0);
    const withMedia = (await ok<{ moderationCase: Case }>(CASE, { id: found.id }, mod)).moderationCase;
    expect(withMedia.media?.id).toBe(profilePhoto.id);
    const url = withMedia.media?.url ?? "";
    expect((await fetch(url)).status).toBe(200);

    await ok(RESOLVE, { input: { caseId: found.id, action: "REMOVE_MEDIA", reason: "explicit image" } }, mod);
    await eventually(async () => (await fetch(url)).status === 404);
    const profile = await eventually(async () => {
      const response = await send<{ user: { photos: Array<{ id: string }> } }>(
        `query($id: ID!) { user(id: $id) { photos { id } } }`,
        { id: owner.userId },
        reporter,
      );
      const photos = response.body.data?.user.photos;
      return photos && !photos.some((p) => p.id === profilePhoto.id) ? photos : null;
    });
    expect(profile.map((p) => p.id)).not.toContain(profilePhoto.id);
    expect(await media.myMedia(owner, profilePhoto.id)).toBeNull();
  });

  it("should keep banUser working as a deprecated alias: a BAN case, audited, sessions ended", async () => {
    const mod = await moderator();
    const target = await fixture.client.signUp();
    expect(
      (
        await ok<{ banUser: boolean }>(
          `mutation($id: ID!) { banUser(userId: $id) }`,
          { id: target.userId },
          mod,
        )
      ).banUser,
    ).toBe(true);
    const cases = await fixture.dbs.users.moderationCase.findMany({ where: { targetId: target.userId } });
    expect(cases).toMatchObject([{ status: "ACTIONED", action: "BAN", resolvedBy: mod.userId }]);
    const audit = (
      await ok<{ moderationAuditLog: { entries: Array<Record<string, unknown>> } }>(
        AUDIT,
        { caseId: cases[0]!.id },
        mod,
      )
    ).moderationAuditLog.entries;
    expect(audit).toMatchObject([{ what: "BAN", moderatorId: mod.userId, targetId: target.userId }]);
    expect(errorCode(await fixture.client.me(target.accessToken))).toBe("UNAUTHENTICATED");
    expect(errorCode(await fixture.client.logIn(target.email, target.password))).toBe("FORBIDDEN");
  });

  it("should export the age of the oldest open case as a metric", async () => {
    const [reporter, target] = await Promise.all([fixture.client.signUp(), fixture.client.signUp()]);
    await reportUser(reporter, target.userId);
    const metricsUrl = fixture.system.subgraphs.users.url.replace(/\/graphql$/, "/metrics");
    const read = async () => {
      const text = await (await fetch(metricsUrl)).text();
      const line = text.split("\n").find((l) => l.startsWith("hv_moderation_oldest_open_case_age_seconds"));
      return line === undefined ? null : Number(line.split(" ").at(-1));
    };
    // The oldest open case, as the database has it, backdated by an hour: the gauge follows it.
    const oldest = await fixture.dbs.users.moderationCase.findFirstOrThrow({
      where: { status: "OPEN" },
      orderBy: { openedAt: "asc" },
    });
    await fixture.dbs.users.moderationCase.update({
      where: { id: oldest.id },
      data: { openedAt: new Date(oldest.openedAt.getTime() - 3_600_000) },
    });
    const value = await read();
    expect(value).not.toBeNull();
    expect(value!).toBeGreaterThanOrEqual(3600);
  });
});
