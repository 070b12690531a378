import { readFileSync } from "node:fs";
import { GraphQLError, parse, Source, type DocumentNode } from "graphql";
import { SUBGRAPHS as REGISTRY } from "@hv/kit/src/subgraphs";
import { fromRoot } from "./paths";

export interface SubgraphSource {
  name: string;
  /** Routing URL written into the supergraph; the gateway overrides it from its config. */
  url: string;
  /** Repository-relative path of the subgraph's SDL. */
  sdlPath: string;
}

export interface LoadedSubgraph {
  name: string;
  url: string;
  typeDefs: DocumentNode;
}

/** Every subgraph composed into the supergraph: the registry's (kit/src/subgraphs.ts). */
export const SUBGRAPHS: readonly SubgraphSource[] = REGISTRY.map(({ name, port, sdl }) => ({
  name,
  url: `http://localhost:${port}/graphql`,
  sdlPath: sdl,
}));

/** Reads and parses each subgraph's SDL; throws an error naming the subgraph and file on failure. */
export function loadSubgraphs(sources: readonly SubgraphSource[] = SUBGRAPHS): LoadedSubgraph[] {
  return sources.map(({ name, url, sdlPath }) => {
    let sdl: string;
    try {
      sdl = readFileSync(fromRoot(sdlPath), "utf8");
    } catch (error) {
      throw new Error(`cannot read the SDL of subgraph "${name}" at ${sdlPath}: ${String(error)}`);
    }
    try {
      return { name, url, typeDefs: parse(new Source(sdl, sdlPath)) };
    } catch (error) {
      const detail = error instanceof GraphQLError ? error.toString() : String(error);
      throw new Error(`the SDL of subgraph "${name}" (${sdlPath}) does not parse: ${detail}`);
    }
  });
}
