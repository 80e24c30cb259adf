/**
 * Expand, then contract: a fleet is upgraded one node at a time, so nodes of the previous release go on running
 * on the schema a new node brought up (docs/upgrades.md). A migration they can live with only adds — tables,
 * nullable columns or columns with a default, indexes, functions, triggers — and changes nothing they read or
 * write. What takes something away or makes an old write fail (a DROP, a RENAME, a new NOT NULL without a
 * default, a column's type, a new constraint, deleted rows) is a contraction: it waits for the release after
 * the one that stopped using what it removes.
 *
 * `contractions` reads a statement's SQL and names what in it is not expand-only; the migrations record
 * whether each version was expand-only (schema_migrations.expand_only), so a node of this release can start
 * on a schema a later release expanded, and test/fleet/schema-compat.test.ts holds this release's migrations
 * to the rule.
 */

/** What in `sql` an older node may not be able to live with, in words; empty when it only adds. */
export const contractions = (sql: string): ReadonlyArray<string> => {
  // Function bodies ($$ … $$) are code, not schema changes: a trigger's body may say "drop" or "delete".
  const text = sql
    .replace(/\$\$[\s\S]*?\$\$/g, "$$$$")
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/\s+/g, " ")
    .trim()
    .toLowerCase();
  const found: string[] = [];
  const says = (pattern: RegExp, what: string) => {
    if (pattern.test(text)) found.push(what);
  };
  says(/\bdrop\b/, "drops something (DROP)");
  says(/\brename\b/, "renames something (RENAME)");
  says(/\bset not null\b/, "makes an existing column NOT NULL");
  says(/\balter column \S+ (set data )?type\b/, "changes a column's type");
  says(
    /\badd (constraint|primary key|unique|check|foreign key)\b/,
    "adds a constraint older writes may break",
  );
  says(/^(delete|truncate)\b/, "deletes rows");
  for (const column of text.matchAll(/\badd column (?:if not exists )?([^,]*)/g)) {
    const definition = column[1] ?? "";
    if (/\bnot null\b/.test(definition) && !/\bdefault\b/.test(definition))
      found.push(`adds a NOT NULL column without a default (${definition.split(" ")[0]})`);
  }
  return found;
};
