import { randomBytes, randomUUID } from "node:crypto";
import { graphqlRequest, type GraphQLResponse } from "./system";

export interface SignedIn {
  userId: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

export const SESSION_FIELDS = "accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt user { id displayName }";

interface SessionData {
  accessToken: string;
  refreshToken: string;
  user: { id: string; displayName: string };
}

/** A mobile client's calls, over real HTTP through the gateway. */
/**
 * A random address in the IPv6 documentation range: each simulated phone gets its own, so per-IP
 * budgets (kept in Redis across test runs) count only what that test does.
 */
export function randomClientIp(): string {
  const groups = randomBytes(12).toString("hex").match(/.{4}/g) ?? [];
  return `2001:db8:${groups.join(":")}`;
}

export class UsersClient {
  constructor(
    readonly gatewayUrl: string,
    readonly clientIp = randomClientIp(),
  ) {}

  request<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown> = {},
    accessToken?: string,
    clientIp = this.clientIp,
  ): Promise<GraphQLResponse<T>> {
    return graphqlRequest<T>(this.gatewayUrl, query, variables, {
      "x-forwarded-for": clientIp,
      ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
    });
  }

  async signUp(overrides: Partial<{ email: string; password: string; displayName: string; birthDate: string }> = {}): Promise<SignedIn> {
    const input = {
      email: `${randomUUID()}@example.test`,
      password: "correct horse battery staple",
      displayName: "Sam",
      birthDate: "1995-04-01",
      ...overrides,
    };
    const response = await this.request<{ signUp: SessionData }>(
      `mutation($input: SignUpInput!) { signUp(input: $input) { ${SESSION_FIELDS} } }`,
      { input },
      undefined,
      randomClientIp(), // a different phone each time
    );
    const session = response.body.data?.signUp;
    if (!session) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
    return { userId: session.user.id, email: input.email, password: input.password, accessToken: session.accessToken, refreshToken: session.refreshToken };
  }

  logIn(email: string, password: string) {
    return this.request<{ logIn: SessionData }>(`mutation($input: LogInInput!) { logIn(input: $input) { ${SESSION_FIELDS} } }`, {
      input: { email, password },
    });
  }

  refresh(refreshToken: string) {
    return this.request<{ refreshSession: SessionData }>(
      `mutation($t: String!) { refreshSession(refreshToken: $t) { ${SESSION_FIELDS} } }`,
      { t: refreshToken },
    );
  }

  me(accessToken: string) {
    return this.request<{ me: { id: string } | null }>(`{ me { id } }`, {}, accessToken);
  }
}

export function errorCode(response: GraphQLResponse): string | undefined {
  return response.body.errors?.[0]?.extensions?.code;
}
