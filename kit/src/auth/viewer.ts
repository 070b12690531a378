import { appError, ErrorCode } from "../errors";

export type ViewerRole = "USER" | "MODERATOR";

/** Who is making a request, from a verified access token. */
export interface Viewer {
  userId: string;
  sessionId: string;
  role: ViewerRole;
  /** When the account was created (epoch seconds, the token's `created` claim); absent in older tokens. */
  accountCreatedAt?: number;
}

/** What every request context carries about its caller. */
export interface AuthContext {
  /** null: no token was sent (anonymous). A bad token never gets this far: it is refused. */
  viewer: Viewer | null;
  /** The client's address as seen by the gateway (trusted proxy hops removed). */
  clientIp: string;
}

export function requireViewer(context: AuthContext): Viewer {
  if (!context.viewer) throw appError(ErrorCode.UNAUTHENTICATED, "Sign in first: this needs an access token");
  return context.viewer;
}

export function requireModerator(context: AuthContext): Viewer {
  const viewer = requireViewer(context);
  if (viewer.role !== "MODERATOR") throw appError(ErrorCode.FORBIDDEN, "Only moderators may do this");
  return viewer;
}
