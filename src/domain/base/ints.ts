/** Numbers and values in validation messages: one wording for every field. */
import * as Schema from "effect/Schema";

/** A value as a message quotes it: JSON, cut at 40 characters. */
export const show = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

/** A whole number in a range; every failure, including a wrong type, says the range and what was sent. */
export const intRange = (min: number, max: number) => {
  const message = (issue: { readonly actual: unknown }) =>
    `must be an integer from ${min} to ${max}, got ${show(issue.actual)}`;
  return Schema.Number.annotations({ message }).pipe(
    Schema.int({ message }),
    Schema.between(min, max, { message }),
  );
};

/** A whole number in a range, its message the range alone (the health and redundancy timers' wording). */
export const intBetween = (min: number, max: number) => {
  const message = () => `must be an integer from ${min} to ${max}`;
  return Schema.Number.annotations({ message }).pipe(
    Schema.int({ message }),
    Schema.between(min, max, { message }),
  );
};
