/**
 * The one equality for configuration values (channels, outputs, policies, rules as the API takes them): Effect's
 * `Equal` in a structural region, so plain objects and arrays compare by content, keys in any order, and a key
 * whose value is undefined is the same as one left out (as JSON, which the store keeps, has it). Loads no
 * Schema: the forwarding threads use it too.
 */
import * as Equal from "effect/Equal";
import { structuralRegion } from "effect/Utils";

const definedEntries = (value: object): Array<[string, unknown]> =>
  Object.entries(value).filter(([, v]) => v !== undefined);

/** Called by `Equal` where its own structural test says no: two plain objects that differ only in undefined keys. */
const undefinedAsAbsent = (a: unknown, b: unknown): boolean => {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype)
    return false;
  const left = definedEntries(a);
  const right = new Map(definedEntries(b));
  return (
    left.length === right.size && left.every(([key, v]) => right.has(key) && Equal.equals(v, right.get(key)))
  );
};

/** Whether two configuration values are the same; undefined and null alike at the top. */
export const sameValue = (a: unknown, b: unknown): boolean =>
  structuralRegion(() => Equal.equals(a ?? null, b ?? null), undefinedAsAbsent);
