/**
 * The PIDs an output policy names as JSON keys (`remap`): read by the policy's schema, its rules and the
 * forwarding threads' rewriter alike, so it loads nothing (no effect/Schema in a forwarding thread).
 */
const PID_KEY = /^(0x[0-9a-f]{1,4}|[0-9]{1,4})$/i;
/** A PID as a JSON key: decimal or 0x hex. */
export const pidOfKey = (key: string): number | null => (PID_KEY.test(key) ? Number(key) : null);

/** The remap as [from, to] pairs, in key order. */
export const remapPairs = (
  remap: Readonly<Record<string, number>> | undefined,
): ReadonlyArray<readonly [number, number]> =>
  Object.entries(remap ?? {}).flatMap(([key, to]) => {
    const from = pidOfKey(key);
    return from === null ? [] : [[from, to] as const];
  });
