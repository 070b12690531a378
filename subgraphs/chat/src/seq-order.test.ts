import { inSeqOrder, type ChatEventPayload, type ChatEventKind } from "./modules/bus";

/** A source the test pushes events into, as the Redis channel's iterator would hand them over. */
function channel() {
  const queue: ChatEventPayload[] = [];
  let waiting: ((r: IteratorResult<ChatEventPayload>) => void) | undefined;
  let ended = false;
  const source: AsyncIterator<ChatEventPayload> = {
    next: () => {
      const event = queue.shift();
      if (event) return Promise.resolve({ done: false, value: event });
      if (ended) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve) => (waiting = resolve));
    },
    return: () => {
      ended = true;
      waiting?.({ done: true, value: undefined });
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  const push = (event: ChatEventPayload) => {
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve({ done: false, value: event });
    } else queue.push(event);
  };
  return { source, push };
}

const event = (
  conversationId: string,
  seq: number,
  kind: ChatEventKind = "MESSAGE_ADDED",
): ChatEventPayload => ({
  kind,
  conversationId,
  seq,
  message: null,
  actorId: null,
  occurredAt: new Date(0).toISOString(),
});
const label = (e: ChatEventPayload) =>
  `${e.conversationId}:${e.kind === "MESSAGE_ADDED" ? "" : `${e.kind}@`}${e.seq}`;

async function take(stream: AsyncIterator<ChatEventPayload>, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const result = await stream.next();
    if (result.done) break;
    out.push(label(result.value));
  }
  return out;
}

describe("a subscriber's chat events in seq order", () => {
  it("should hold a message published early until the ones before it arrive, per conversation", async () => {
    const { source, push } = channel();
    const stream = inSeqOrder(source, 10_000);
    for (const e of [
      event("a", 1),
      event("a", 4),
      event("b", 7),
      event("a", 2, "READ"),
      event("a", 3),
      event("a", 2),
      event("b", 8),
    ])
      push(e);
    // b is not held behind a's gap; a's READ waits with a's messages (messages take the held messages' places, sorted).
    expect(await take(stream, 7)).toEqual(["a:1", "b:7", "a:2", "a:READ@2", "a:3", "a:4", "b:8"]);
    await stream.return();
  });

  it("should let held events go after the hold time without a message that never comes, and pass a late one as it is", async () => {
    const { source, push } = channel();
    const stream = inSeqOrder(source, 50);
    push(event("a", 1));
    push(event("a", 3));
    push(event("a", 4));
    const started = Date.now();
    expect(await take(stream, 3)).toEqual(["a:1", "a:3", "a:4"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    push(event("a", 2));
    push(event("a", 5));
    expect(await take(stream, 2)).toEqual(["a:2", "a:5"]);
    await stream.return();
  });

  it("should end a waiting next() when returned", async () => {
    const { source } = channel();
    const stream = inSeqOrder(source, 50);
    const pending = stream.next();
    await stream.return();
    expect(await pending).toEqual({ done: true, value: undefined });
  });
});
