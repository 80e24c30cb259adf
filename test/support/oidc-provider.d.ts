/**
 * The few parts of `oidc-provider` (which ships no types) that test/support/oidc.ts uses: the configuration
 * is checked by the provider itself when it starts.
 */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  interface Account {
    readonly accountId: string;
    readonly claims: () => Record<string, unknown>;
  }
  interface Configuration {
    readonly clients: ReadonlyArray<Record<string, unknown>>;
    readonly jwks: { readonly keys: ReadonlyArray<Record<string, unknown>> };
    readonly claims: Record<string, ReadonlyArray<string>>;
    readonly scopes: ReadonlyArray<string>;
    readonly findAccount: (ctx: unknown, sub: string) => Account | undefined;
    readonly pkce: { readonly required: () => boolean };
    readonly cookies: { readonly keys: ReadonlyArray<string> };
    readonly features: Record<string, Record<string, unknown>>;
    readonly extraTokenClaims: (ctx: unknown, token: object) => Record<string, unknown> | undefined;
  }
  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
  }
}
