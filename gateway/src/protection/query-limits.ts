import { ApolloArmor } from "@escape.tech/graphql-armor";
import type { GraphQLArmorRejectCallback } from "@escape.tech/graphql-armor-types";
import type { ApolloServerPlugin } from "@apollo/server";
import {
  GraphQLError,
  parse,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from "graphql";
import type { GatewayProtectionConfig } from "@hv/kit";

export type QueryLimits = GatewayProtectionConfig["queryLimits"];

/** Which limit refused an operation, as `extensions.limit` beside GRAPHQL_VALIDATION_FAILED. */
export type QueryLimitName = "maxDepth" | "maxAliases" | "maxDirectives" | "maxCost" | "maxTokens";

/** Armor reports a refusal through the validation context, tagged with the limit's name. */
function reportAs(limit: QueryLimitName): GraphQLArmorRejectCallback[] {
  return [
    (context, error) => {
      const message = error.message.replace(/^Syntax Error: /, "");
      context?.reportError(
        new GraphQLError(`The operation is too complex: ${message}`, { extensions: { limit } }),
      );
    },
  ];
}

export interface QueryLimitProtection {
  /** Validation rules for Apollo Server (depth, aliases, directives, cost), run with the spec's rules. */
  validationRules: ValidationRule[];
  /** Apollo plugins of GraphQL Armor (field suggestions masked in error messages). */
  plugins: ApolloServerPlugin[];
  /** graphql-js stops lexing beyond this many tokens (Apollo's `parseOptions.maxTokens`). */
  maxTokens: number;
  /**
   * The same limits for a document that does not go through Apollo Server (subscriptions over
   * WebSocket): the errors, or the parsed document.
   */
  check(schema: GraphQLSchema, query: string): GraphQLError[] | DocumentNode;
}

/**
 * Query limits with GraphQL Armor (Escape's maintained rule set for Apollo Server): depth,
 * aliases, directives and cost are validation rules; the token limit is graphql-js's own parser
 * option (Armor's Apollo token plugin throws from a hook Apollo turns into a 500).
 */
export function queryLimitProtection(limits: QueryLimits): QueryLimitProtection {
  const armor = new ApolloArmor({
    maxDepth: {
      n: limits.maxDepth,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: reportAs("maxDepth"),
    },
    maxAliases: { n: limits.maxAliases, propagateOnRejection: false, onReject: reportAs("maxAliases") },
    maxDirectives: {
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: reportAs("maxDirectives"),
    },
    costLimit: {
      maxCost: limits.maxCost,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: reportAs("maxCost"),
    },
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: true },
  });
  const protection = armor.protect();
  const validationRules = protection.validationRules;
  return {
    validationRules,
    plugins: protection.plugins,
    maxTokens: limits.maxTokens,
    check(schema, query) {
      let document: DocumentNode;
      try {
        document = parse(query, { maxTokens: limits.maxTokens, noLocation: true });
      } catch (caught) {
        const message = caught instanceof GraphQLError ? caught.message : "The query does not parse";
        return [new GraphQLError(message, { extensions: { code: "GRAPHQL_PARSE_FAILED" } })];
      }
      const errors = validate(schema, document, validationRules, { maxErrors: 10 });
      if (errors.length > 0) {
        return errors.map(
          (e) =>
            new GraphQLError(e.message, {
              extensions: { ...e.extensions, code: "GRAPHQL_VALIDATION_FAILED" },
            }),
        );
      }
      return document;
    },
  };
}
