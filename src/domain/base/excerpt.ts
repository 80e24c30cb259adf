/**
 * Free text from outside (a provider's `error_description`, a request's path) as the log, the audit trail and
 * the event history may keep it: control and format characters (line breaks, escapes, bidirectional overrides)
 * turned to spaces, runs of spaces made one, and at most `max` characters, cut with "…".
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\s]+/gu;

/** How much of a text from outside is kept by default. */
export const EXCERPT_CHARACTERS = 200;

export const excerpt = (text: string, max = EXCERPT_CHARACTERS): string => {
  // Only the start is looked at, so a megabyte costs what a line does.
  const start = text.length > max * 8 ? text.slice(0, max * 8) : text;
  const characters = Array.from(start.replace(UNPRINTABLE, " ").trim());
  return characters.length > max || start !== text
    ? `${characters.slice(0, max - 1).join("")}…`
    : characters.join("");
};
