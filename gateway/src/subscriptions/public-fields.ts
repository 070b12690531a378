/**
 * Fields whose value is the same for every viewer who is not the entity's owner: what an anonymous
 * caller gets is exactly what any other non-owner gets. Only fetches that select nothing but these
 * (plus `__typename`) are shared ACROSS viewers while subscription events are resolved, and such a
 * shared fetch is sent to the subgraph WITHOUT anyone's token (or address, or request id), so the
 * subgraph cannot personalise it.
 *
 * THE RULE for an entry: its resolver (and its entity's `__resolveReference`) must not read
 * `context.viewer` at all, except to show the OWNER an entity nobody else sees (a hidden profile),
 * and then only on a type listed in OWNER_KEYS (the gateway sees the owner in the representation;
 * when the anonymous answer has every entity it is the owner's too, otherwise the owner's fetch is
 * sent with their token). A field whose VALUE differs for the owner is private. Anything that
 * depends on who asks for someone else's entity is private:
 * - owner-only fields: User.email, birthDate, visibility, role, discoveryPreferences;
 * - relations to the viewer: User.distance, User.isDiscoverable, User.presence;
 * - Media's read rule (subgraphs/media/src/modules/access.ts): User.photos is empty across blocks
 *   and for banned owners, Media.status/width/height/durationMs/blurhash/variants are null for a
 *   viewer who may not read the item (blocks, bans, chat grants) and the owner sees their own
 *   unpublished media: none of them is public; signed URLs never are;
 * - anything a subgraph computes from the viewer. A new field is private until listed here.
 *
 * Each entry says for whom it is the same:
 * - "everyone": every viewer, the owner included. Public anywhere in a fetch.
 * - "non-owners": every viewer but the owner. Public only directly on an entity whose type is in
 *   OWNER_KEYS (the gateway recognises the owner's entity and sends that fetch with their token),
 *   never nested inside another object, which may belong to the viewer unrecognised.
 */
export type Audience = "everyone" | "non-owners";

export const PUBLIC_FIELDS: ReadonlyMap<string, Audience> = new Map<string, Audience>([
  // Users: the public profile. Users resolves a hidden or banned profile to null for every
  // non-owner alike and knows nothing of blocks; only its owner sees a hidden profile.
  ["User.id", "non-owners"],
  ["User.displayName", "non-owners"],
  ["User.bio", "non-owners"],
  ["User.pronouns", "non-owners"],
  ["User.age", "non-owners"],
  ["User.gender", "non-owners"],
  ["User.gendersOfInterest", "non-owners"],
  ["User.interests", "non-owners"],
  ["User.createdAt", "non-owners"],
  // Media: which item and what kind. Media's reference resolver returns the row to anyone, and these
  // two never follow the read rule, so they are the same for every viewer, the owner included.
  ["Media.id", "everyone"],
  ["Media.kind", "everyone"],
]);

/**
 * Entity types whose owner the gateway can recognise in a representation (the field holding the
 * owner's user id). A fetch with a representation of the viewer's own entity is always sent with
 * the viewer's token: its owner sees more of it than anyone else (a hidden profile is visible to
 * its owner only). A type missing here (Media: its representation names no owner) may only have
 * PUBLIC_FIELDS entries that are the same for the owner too.
 */
export const OWNER_KEYS: Readonly<Record<string, string>> = {
  User: "id",
};
