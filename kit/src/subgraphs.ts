/**
 * The one registry of subgraphs, read by kit's config, Prisma's scripts, the schema tooling, the
 * tests' global set-up, run-all and the infra checks. Adding a subgraph starts here (CONTRIBUTING.md).
 * No imports: Prisma's CLI config loads this file on its own.
 */
const PORTS = { users: 4001, discovery: 4002, chat: 4003, media: 4004 } as const;

export type SubgraphName = keyof typeof PORTS;

export interface SubgraphEntry {
  name: SubgraphName;
  /** Default of `<NAME>_PORT`, and the port in the supergraph's routing URL. */
  port: number;
  /** `<NAME>_DATABASE_URL`: the variable holding its database URL. */
  databaseUrlVar: string;
  /** Repository-relative path of its SDL. */
  sdl: string;
  /** Repository-relative folder of its `schema.prisma` and `migrations/`. */
  prismaDir: string;
}

export const SUBGRAPH_NAMES = Object.keys(PORTS) as readonly SubgraphName[];

export const SUBGRAPHS: readonly SubgraphEntry[] = SUBGRAPH_NAMES.map((name) => ({
  name,
  port: PORTS[name],
  databaseUrlVar: `${name.toUpperCase()}_DATABASE_URL`,
  sdl: `subgraphs/${name}/src/schema.graphql`,
  prismaDir: `prisma/${name}`,
}));
