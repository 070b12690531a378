import { randomBytes, randomUUID } from "node:crypto";
import { verificationTokenFor } from "./mail-tokens";
import { graphqlRequest, type GraphQLResponse } from "./system";

export interface SignedIn {
  userId: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  knownDeviceToken: string;
}

export const SESSION_FIELDS =
  "accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt knownDeviceToken user { id displayName }";

export interface SessionData {
  accessToken: string;
  refreshToken: string;
  knownDeviceToken: string | null;
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
  /**
   * @param verificationToken how a sign-up's mailed link is opened: by default a copy of the pending
   * token from this run's users database; a test that has the mail itself reads the link from it.
   */
  constructor(
    readonly gatewayUrl: string,
    readonly clientIp = randomClientIp(),
    private readonly verificationToken: (email: string) => Promise<string> = (email) =>
      verificationTokenFor(email),
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

  /** A new, verified account: signUp, then its verification link opened (see mail-tokens.ts). */
  async signUp(
    overrides: Partial<{ email: string; password: string; displayName: string; birthDate: string }> = {},
  ): Promise<SignedIn> {
    const input = {
      email: `${randomUUID()}@example.test`,
      password: "correct horse battery staple",
      displayName: "Sam",
      birthDate: "1995-04-01",
      ...overrides,
    };
    const phone = randomClientIp(); // a different phone each time
    const response = await this.request<{ signUp: { status: string; email: string } }>(
      `mutation($input: SignUpInput!) { signUp(input: $input) { status email } }`,
      { input },
      undefined,
      phone,
    );
    const pending = response.body.data?.signUp;
    if (!pending) throw new Error(`signUp failed: ${JSON.stringify(response.body.errors)}`);
    const verified = await this.verifyEmail(await this.verificationToken(pending.email), phone);
    const session = verified.body.data?.verifyEmail;
    if (!session?.knownDeviceToken)
      throw new Error(`verifyEmail failed: ${JSON.stringify(verified.body.errors)}`);
    return {
      userId: session.user.id,
      email: input.email,
      password: input.password,
      accessToken: session.accessToken,
      refreshToken: session.refreshToken,
      knownDeviceToken: session.knownDeviceToken,
    };
  }

  verifyEmail(token: string, clientIp = this.clientIp) {
    return this.request<{ verifyEmail: SessionData }>(
      `mutation($t: String!) { verifyEmail(token: $t) { ${SESSION_FIELDS} } }`,
      { t: token },
      undefined,
      clientIp,
    );
  }

  logIn(email: string, password: string, knownDeviceToken?: string, clientIp = this.clientIp) {
    return this.request<{ logIn: SessionData }>(
      `mutation($input: LogInInput!) { logIn(input: $input) { ${SESSION_FIELDS} } }`,
      { input: { email, password, ...(knownDeviceToken === undefined ? {} : { knownDeviceToken }) } },
      undefined,
      clientIp,
    );
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
