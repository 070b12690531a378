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
  databaseUrlVar: `${Uppercase<SubgraphName>}_DATABASE_URL`;
  /** `<NAME>_LISTEN_DATABASE_URL`: a direct connection for its outbox relay's LISTEN (optional). */
  listenDatabaseUrlVar: `${Uppercase<SubgraphName>}_LISTEN_DATABASE_URL`;
  /** Its database on the local PostgreSQL: the default of `databaseUrlVar` in development. */
  devDatabaseUrl: string;
  /** Repository-relative path of its SDL. */
  sdl: string;
  /** Repository-relative folder of its `schema.prisma` and `migrations/`. */
  prismaDir: string;
}

export const SUBGRAPH_NAMES = Object.keys(PORTS) as readonly SubgraphName[];

export const SUBGRAPHS: readonly SubgraphEntry[] = SUBGRAPH_NAMES.map((name) => ({
  name,
  port: PORTS[name],
  databaseUrlVar: `${name.toUpperCase() as Uppercase<SubgraphName>}_DATABASE_URL`,
  listenDatabaseUrlVar: `${name.toUpperCase() as Uppercase<SubgraphName>}_LISTEN_DATABASE_URL`,
  devDatabaseUrl: `postgresql://postgres@127.0.0.1:5432/hv_${name}`,
  sdl: `subgraphs/${name}/src/schema.graphql`,
  prismaDir: `prisma/${name}`,
}));

/** The registry entry of one subgraph. */
export function subgraphEntry(name: SubgraphName): SubgraphEntry {
  const entry = SUBGRAPHS.find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`${name} is not in the subgraph registry (kit/src/subgraphs.ts)`);
  return entry;
}
