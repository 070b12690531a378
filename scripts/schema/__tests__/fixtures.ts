import { parse } from "graphql";
import type { LoadedSubgraph } from "../subgraphs";

const LINK = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@shareable"])`;

/** A subgraph from inline SDL; the federation @link is added for you. */
export function subgraph(name: string, sdl: string): LoadedSubgraph {
  return { name, url: `http://${name}.test/graphql`, typeDefs: parse(`${LINK}\n${sdl}`) };
}

export const usersSdl = (userFields = "displayName: String!") => `
  type User @key(fields: "id") {
    id: ID!
    ${userFields}
  }
  type Query {
    user(id: ID!): User
  }
`;

export const mediaSdl = `
  type Media @key(fields: "id") {
    id: ID!
    width: Int
  }
  type User @key(fields: "id") {
    id: ID!
    photos: [Media!]!
  }
`;
