import type { Logger, RequestContextBase, Viewer } from "@hv/kit";
import { createLoaders, type ChatLoaders } from "../loaders";
import type { ChatContext, ChatServices } from "./context";

/**
 * A request's or subscription's context. Loaders are made on first use: a subscription holds its
 * context for hours and resolves most events without a query. Reads the base's fields through
 * (its logger is made on first use for a subscription) instead of copying them.
 */
export class ChatRequestContext implements ChatContext {
  // Not a #private field: Apollo Server copies a context with Object.create and Object.assign.
  private made: ChatLoaders | undefined;

  constructor(
    private readonly base: RequestContextBase,
    readonly services: ChatServices,
  ) {}

  get requestId(): string {
    return this.base.requestId;
  }

  get logger(): Logger {
    return this.base.logger;
  }

  get viewer(): Viewer | null {
    return this.base.viewer;
  }

  get clientIp(): string {
    return this.base.clientIp;
  }

  get loaders(): ChatLoaders {
    return (this.made ??= createLoaders(this.services, this.base.viewer?.userId ?? null));
  }

  refreshLoaders(): void {
    this.made = undefined;
  }
}
