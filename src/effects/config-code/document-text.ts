/**
 * A declarative document's text read for config-code.ts: parsed as YAML (JSON is YAML) with the place of each
 * field (`file:line:column`), and a refusal whose issues start with that place, as compilers write it.
 */
import * as Either from "effect/Either";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { ControlError, type FieldIssue } from "../../domain/base/errors.ts";

/**
 * A document refused: each issue's field is its path in the document and its message starts with where it is
 * (`channels.yaml:37:19`), as compilers write it so that editors jump there.
 */
export const problem = (issues: ReadonlyArray<FieldIssue & { readonly at: string }>) =>
  new ControlError({
    reason: "invalid",
    message: issues.map((issue) => `${issue.at}: ${issue.field}: ${issue.message}`).join("; "),
    errors: issues.map((issue) => ({ field: issue.field, message: `${issue.at}: ${issue.message}` })),
  });

/** A field's path as a document names it (`channels.news.outputs[0]`, with dots and brackets) in steps. */
const stepsOf = (field: string): ReadonlyArray<string | number> =>
  field
    .split(/\.|(?=\[)/)
    .filter((step) => step !== "")
    .map((step) => (/^\[\d+\]$/.test(step) ? Number(step.slice(1, -1)) : step));

/** The text parsed as YAML (JSON is YAML), and where each field of it is: `file:line:column`. */
export const parseText = (file: string, text: string) => {
  const counter = new LineCounter();
  const document = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number) => {
    const { line, col } = counter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (document.errors.length > 0)
    return Either.left(
      problem(
        document.errors.slice(0, 5).map((error) => ({
          at: at(error.pos[0]),
          field: "(document)",
          message: error.message.split("\n")[0] ?? error.message,
        })),
      ),
    );
  /** The place of the deepest node the field's path reaches. */
  const place = (field: string): string => {
    let node: unknown = document.contents;
    let offset = 0;
    for (const step of stepsOf(field)) {
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(step));
        if (pair === undefined) break;
        const key = pair.key as Node;
        offset = key.range?.[0] ?? offset;
        node = pair.value;
        if ((node as Node | null)?.range !== undefined) offset = (node as Node).range?.[0] ?? offset;
      } else if (isSeq(node) && typeof step === "number") {
        node = node.items[step];
        if (node === undefined) break;
        offset = (node as Node).range?.[0] ?? offset;
      } else break;
    }
    return at(offset);
  };
  return Either.right({ value: document.toJS({ maxAliasCount: 100 }) as unknown, place });
};
