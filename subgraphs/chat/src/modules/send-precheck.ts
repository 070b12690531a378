import { isUuid, type SqlStatement } from "@hv/kit";
import type { SqlClient } from "../db";
import {
  precheckBatchStatement,
  precheckStatement,
  type ConversationKind,
  type PrecheckedSend,
} from "./store-statement";

/** One send's pre-check: absent when the sender is not a member of the conversation. */
export interface SendPrecheck {
  kind: ConversationKind;
  closed: boolean;
  banned: boolean;
  /** On hold after a spam signal: messages to strangers are withheld (spam-signals.ts). */
  held: boolean;
  existing: string | null;
}

interface Waiting extends PrecheckedSend {
  resolve(check: SendPrecheck | undefined): void;
  reject(error: unknown): void;
}

/**
 * The send's pre-check (messages.ts), shared by sends that arrive together: a send while no
 * pre-check is being read runs its own statement at once (`precheckStatement`); a send while one is
 * waits for the end of the event-loop turn (`setImmediate`), and the sends that waited in one turn
 * are read in one statement (one round trip). Each send gets what its own statement would have
 * answered at that moment; a failed read fails every send of its statement.
 */
export class SendPrechecks {
  private waiting: Waiting[] = [];
  /** Pre-check statements sent and not answered yet. */
  private reading = 0;

  constructor(private readonly sql: SqlClient) {}

  check(
    conversationId: string,
    senderId: string,
    clientMessageId: string,
  ): Promise<SendPrecheck | undefined> {
    if (this.reading === 0 || !isUuid(conversationId) || !isUuid(senderId))
      return this.one(conversationId, senderId, clientMessageId);
    return new Promise((resolve, reject) => {
      if (this.waiting.push({ conversationId, senderId, clientMessageId, resolve, reject }) === 1)
        setImmediate(() => this.flush());
    });
  }

  private async one(conversationId: string, senderId: string, clientMessageId: string) {
    const rows = await this.read<SendPrecheck>(precheckStatement(conversationId, senderId, clientMessageId));
    return rows[0];
  }

  private async read<T>(statement: SqlStatement): Promise<T[]> {
    this.reading += 1;
    try {
      return await this.sql.query<T>(statement);
    } finally {
      this.reading -= 1;
    }
  }

  private flush(): void {
    const batch = this.waiting;
    this.waiting = [];
    const [first] = batch;
    if (batch.length === 1 && first) {
      this.one(first.conversationId, first.senderId, first.clientMessageId).then(first.resolve, first.reject);
      return;
    }
    this.read<SendPrecheck & { ord: number }>(precheckBatchStatement(batch)).then(
      (rows) => {
        const found = new Array<SendPrecheck | undefined>(batch.length);
        for (const { ord, ...check } of rows) found[ord - 1] = check;
        batch.forEach((waiting, index) => waiting.resolve(found[index]));
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
  }
}
