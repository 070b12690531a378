import { HeaderMap } from "@apollo/server";
import {
  addressBudgetKey,
  createRateLimiter,
  ErrorCode,
  rateLimitKey,
  type GatewayProtectionConfig,
  type RateLimiter,
  type Redis,
  type Viewer,
} from "@hv/kit";
import type { AdmissionBudget, OperationBudgetSpend } from "./admission";
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

type Budgets = GatewayProtectionConfig["rateLimits"];
export type SensitiveBudget = "logIn" | "signUp" | "swipe" | "sendMessage" | "createUpload";

/** Root mutation fields with a budget of their own; every occurrence (alias) costs one point. */
export const SENSITIVE_FIELDS: Readonly<Record<string, SensitiveBudget>> = {
  logIn: "logIn",
  signUp: "signUp",
  like: "swipe",
  superLike: "swipe",
  sendMessage: "sendMessage",
  createUpload: "createUpload",
};

/** Whose budget: anonymous calls (logIn, signUp) by address; the rest by user, by address when anonymous. */
const COUNTED_BY: Readonly<Record<SensitiveBudget, "address" | "viewer">> = {
  logIn: "address",
  signUp: "address",
  swipe: "viewer",
  sendMessage: "viewer",
  createUpload: "viewer",
};

/** rate-limiter-flexible's name of each sensitive budget (its keys' middle part, `extensions.limit`). */
const SENSITIVE_LABELS: Readonly<Record<SensitiveBudget, string>> = {
  logIn: "edge-login",
  signUp: "edge-signup",
  swipe: "edge-swipe",
  sendMessage: "edge-send-message",
  createUpload: "edge-create-upload",
};

/** Points an operation spends on each sensitive budget, in the order they are spent. */
export type SensitivePoints = ReadonlyArray<readonly [SensitiveBudget, number]>;

/** One sensitive budget of one request: what the admission script spends, and on which limiter. */
export interface SensitiveSpend extends OperationBudgetSpend {
  budget: SensitiveBudget;
  /** The limiter's key (`user:<id>` or `address:<address>`). */
  subject: string;
}

export function samePoints(a: SensitivePoints, b: SensitivePoints): boolean {
  return a.length === b.length && a.every(([budget, n], i) => b[i]?.[0] === budget && b[i]?.[1] === n);
}

/**
 * How often each root field occurs in the operation, through aliases, inline fragments and
 * fragment spreads (`a: logIn(…) b: logIn(…) ...F` counts every one).
 */
export function rootFieldOccurrences(
  document: DocumentNode,
  operation: OperationDefinitionNode,
): Map<string, number> {
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const counts = new Map<string, number>();
  const walk = (selectionSet: SelectionSetNode, path: Set<string>) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        counts.set(selection.name.value, (counts.get(selection.name.value) ?? 0) + 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, path);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        // Validation refuses cycles; the guard keeps a hostile document from looping here anyway.
        if (fragment && !path.has(name)) walk(fragment.selectionSet, new Set([...path, name]));
      }
    }
  };
  walk(operation.selectionSet, new Set());
  return counts;
}

/** RATE_LIMITED refusing a whole request: HTTP 429 with `Retry-After`, the code and seconds in the body. */
export function asHttp429(error: GraphQLError): GraphQLError {
  const seconds = Number(error.extensions.retryAfterSeconds ?? 1);
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    extensions: {
      ...extensions,
      http: { status: 429, headers: new HeaderMap([["retry-after", String(seconds)]]) },
    },
  });
}

export function isRateLimited(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && error.extensions.code === ErrorCode.RATE_LIMITED;
}

/** The gateway's budgets in Redis, shared by every replica (rate-limiter-flexible through kit). */
export class EdgeRateLimits {
  private readonly limiters: Record<keyof Budgets, RateLimiter>;

  constructor(
    redis: Redis,
    private readonly budgets: Budgets,
    private readonly keyPrefix: string,
  ) {
    const limiter = (name: keyof Budgets, label: string) =>
      createRateLimiter(
        redis,
        { name: label, points: budgets[name].points, durationSeconds: budgets[name].durationSeconds },
        keyPrefix,
      );
    this.limiters = {
      ip: limiter("ip", "edge-address"),
      user: limiter("user", "edge-user"),
      logIn: limiter("logIn", SENSITIVE_LABELS.logIn),
      signUp: limiter("signUp", SENSITIVE_LABELS.signUp),
      swipe: limiter("swipe", SENSITIVE_LABELS.swipe),
      sendMessage: limiter("sendMessage", SENSITIVE_LABELS.sendMessage),
      createUpload: limiter("createUpload", SENSITIVE_LABELS.createUpload),
      subscribe: limiter("subscribe", "edge-subscribe"),
    };
  }

  /** One HTTP request or WebSocket subscribe from this address (an IPv6 /64 counts as one). */
  consumeAddress(ip: string): Promise<void> {
    return this.limiters.ip.consume(addressBudgetKey(ip));
  }

  /**
   * The address and user budgets as the HTTP path's admission script spends them (on the same
   * keys as these limiters: `<prefix>:<label>:<key>`).
   */
  admissionBudgets(): { address: AdmissionBudget; user: AdmissionBudget } {
    const budget = (name: "ip" | "user", label: string): AdmissionBudget => ({
      keyPrefix: `${this.keyPrefix}:${label}`,
      name: label,
      points: this.budgets[name].points,
      durationSeconds: this.budgets[name].durationSeconds,
    });
    return { address: budget("ip", "edge-address"), user: budget("user", "edge-user") };
  }

  /** One subscription started over WebSocket, per user (per address when anonymous). */
  consumeSubscribe(viewer: Viewer | null, ip: string): Promise<void> {
    return this.limiters.subscribe.consume(
      viewer ? `user:${viewer.userId}` : `address:${addressBudgetKey(ip)}`,
    );
  }

  /** One point per occurrence of each sensitive root field of a mutation (none for other operations). */
  sensitivePoints(document: DocumentNode, operation: OperationDefinitionNode): SensitivePoints {
    if (operation.operation !== "mutation") return [];
    const points = new Map<SensitiveBudget, number>();
    for (const [field, count] of rootFieldOccurrences(document, operation)) {
      const budget = SENSITIVE_FIELDS[field];
      if (budget) points.set(budget, (points.get(budget) ?? 0) + count);
    }
    return [...points];
  }

  /** `points` as this caller spends them: by user, or by address (anonymous, and logIn/signUp). */
  sensitiveSpends(points: SensitivePoints, viewer: Viewer | null, ip: string): SensitiveSpend[] {
    return points.map(([budget, amount]) => {
      const subject =
        COUNTED_BY[budget] === "viewer" && viewer
          ? `user:${viewer.userId}`
          : `address:${addressBudgetKey(ip)}`;
      const name = SENSITIVE_LABELS[budget];
      return {
        budget,
        subject,
        key: rateLimitKey({ name, ...this.budgets[budget] }, subject, this.keyPrefix),
        name,
        points: this.budgets[budget].points,
        durationSeconds: this.budgets[budget].durationSeconds,
        amount,
      };
    });
  }

  /** Spends `spends` one by one (a round trip each), stopping at the first over (RATE_LIMITED). */
  async consumeSensitive(spends: ReadonlyArray<SensitiveSpend>): Promise<void> {
    for (const spend of spends) await this.limiters[spend.budget].consume(spend.subject, spend.amount);
  }
}
