/**
 * Which JavaScript runtime runs the service — Node.js, Bun or Deno — read once from the runtime's own globals.
 * Everything that differs between them is chosen from this at start-up, in the small adapters beside it
 * (src/effects/runtime/); the rest of the service is the same code on all three.
 */
export type RuntimeName = "node" | "bun" | "deno";

const globals = globalThis as {
  readonly Bun?: { readonly version: string };
  readonly Deno?: { readonly version: { readonly deno: string } };
};

export const runtimeName: RuntimeName =
  globals.Bun !== undefined ? "bun" : globals.Deno !== undefined ? "deno" : "node";

/** The runtime's own version (Bun's or Deno's, not the Node.js version they report for compatibility). */
export const runtimeVersion: string =
  globals.Bun?.version ?? globals.Deno?.version.deno ?? process.versions.node;
