/**
 * Which JavaScript runtime runs the service — Node.js, Bun or Deno — read once from the runtime's own globals.
 * Everything that differs between them is chosen from this at start-up, in the small adapters beside it
 * (src/effects/runtime/); the rest of the service is the same code on all three.
 */
type RuntimeName = "node" | "bun" | "deno";

const globals = globalThis as {
  readonly Bun?: { readonly version: string };
  readonly Deno?: { readonly version: { readonly deno: string } };
};

export const runtimeName: RuntimeName =
  globals.Bun !== undefined ? "bun" : globals.Deno !== undefined ? "deno" : "node";

/** The runtime's own version (Bun's or Deno's, not the Node.js version they report for compatibility). */
export const runtimeVersion: string =
  globals.Bun?.version ?? globals.Deno?.version.deno ?? process.versions.node;

/**
 * What the service cannot do on this runtime, and why, in the words it refuses the request with (a 501).
 * docs/runtimes.md lists the same.
 */
export const unavailableHere = {
  move:
    runtimeName === "deno"
      ? "moving a running channel between forwarding workers is not available on Deno: Deno's node:dgram does " +
        "not set SO_REUSEPORT, which handing a UDP input over between two datagrams needs. Run the service on " +
        "Node.js or Bun to move channels, or stop the channel and start it again"
      : null,
} as const;
