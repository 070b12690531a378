import type { ExecutionResult, GraphQLError } from "graphql";

/**
 * One client subscription's results: pushed by its feed, pulled by graphql-ws. `fail` ends it with
 * an error (graphql-ws sends an `error` message); `end` completes it. `return()` (the client sent
 * `complete`, or its socket closed) tells its owner once.
 */
/** Who a stream reports to: the error that ends an overflowing stream, and its return (once). */
export interface StreamOwner {
  overflowError(): GraphQLError;
  returned(stream: ClientStream): void;
}

export class ClientStream implements AsyncIterableIterator<ExecutionResult> {
  private readonly queue: ExecutionResult[] = [];
  private waiting:
    { resolve: (r: IteratorResult<ExecutionResult>) => void; reject: (e: unknown) => void } | undefined;
  private failure: GraphQLError | undefined;
  private ended = false;
  private returned = false;

  // An owner, not two closures: one stream is held per subscription, for hours.
  constructor(
    private readonly maxQueued: number,
    private readonly owner: StreamOwner,
  ) {}

  /** No more results will be queued (ended, failed or returned). */
  get finished(): boolean {
    return this.ended || this.returned;
  }

  push(result: ExecutionResult): void {
    if (this.finished) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ done: false, value: result });
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      // A client that does not read its socket must not make the gateway hold unbounded memory.
      this.queue.length = 0;
      this.fail(this.owner.overflowError());
      return;
    }
    this.queue.push(result);
  }

  /** Delivers what is queued, then the error. */
  fail(error: GraphQLError): void {
    if (this.finished) return;
    this.ended = true;
    this.failure = error;
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = undefined;
      reject(error);
    }
    this.release();
  }

  /** Delivers what is queued, then completes. */
  end(): void {
    if (this.finished) return;
    this.ended = true;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ done: true, value: undefined });
    }
    this.release();
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    const value = this.queue.shift();
    if (value !== undefined) return Promise.resolve({ done: false, value });
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      return Promise.reject(failure);
    }
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.queue.length = 0;
    this.failure = undefined;
    this.release();
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ done: true, value: undefined });
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.release();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private release(): void {
    if (this.returned) return;
    this.returned = true;
    this.owner.returned(this);
  }
}
