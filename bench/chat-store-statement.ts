/**
 * What building the send's STORE statement allocates in Chat, in this process, without a database:
 * storeStatement (store-statement.ts) for a DIRECT text send, then what node-postgres does with it
 * before writing (its check of the name's text against the one it parsed, each value prepared):
 *
 *   pnpm exec tsx bench/chat-store-statement.ts [--sends 20000] [--rounds 3]
 *
 * Reported: JS heap bytes allocated (bench/support/loop-probe.ts's AllocationCounter) and CPU µs
 * per send.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { storeStatement } from "@hv/chat/src/modules/store-statement";
import { flag } from "./support/args";
import { AllocationCounter } from "./support/loop-probe";
import { loadAverage } from "./support/service";

/** node-postgres's own conversion of a parameter (pg/lib/utils, not in its typings). */
const { prepareValue } = createRequire(require.resolve("pg"))("./utils") as {
  prepareValue(value: unknown): unknown;
};

function main(): void {
  const sends = flag("sends", 20_000);
  const rounds = flag("rounds", 3);
  const ids = Array.from({ length: 64 }, () => randomUUID());
  /** The text node-postgres saw parsed under each name (Query.submit compares it with `!==`). */
  const parsed = new Map<string, string>();
  let sink = 0;
  const once = (n: number) => {
    const eventBase = {
      messageId: ids[n % 64],
      conversationId: ids[(n + 1) % 64],
      senderId: ids[(n + 2) % 64],
    };
    const statement = storeStatement(
      {
        messageId: ids[n % 64]!,
        conversationId: ids[(n + 1) % 64]!,
        senderId: ids[(n + 2) % 64]!,
        clientMessageId: `c-${n}`,
        text: "hello there",
        attachmentIds: [],
        replyToId: null,
        now: new Date(),
      },
      eventBase,
      ids[(n + 3) % 64]!,
      "DIRECT",
    );
    const previous = parsed.get(statement.name!);
    if (previous === undefined) parsed.set(statement.name!, statement.text);
    else if (previous !== statement.text) throw new Error("a name with two texts");
    for (const value of statement.values) sink += String(prepareValue(value) ?? "").length;
  };
  for (let n = 0; n < 2_000; n += 1) once(n);
  const allocation = new AllocationCounter();
  for (let round = 1; round <= rounds; round += 1) {
    allocation.take();
    const start = process.cpuUsage();
    for (let n = 0; n < sends; n += 1) once(n);
    const used = process.cpuUsage(start);
    const allocated = allocation.take();
    console.log(
      `round ${round}: ${(allocated / sends).toFixed(0)} bytes allocated and ${((used.user + used.system) / sends).toFixed(1)} CPU-µs per send; load average ${loadAverage()}`,
    );
  }
  if (sink < 0) console.log(sink);
}

main();
