/**
 * `distributary plan`, `apply` and `export`: configuration as code against a running service's API
 * (docs/config-as-code.md). The server reads the document, resolves its secret references and answers the
 * plan; this only sends the file and prints. `plan` exits 0 with no changes, 2 with changes and 1 on an error,
 * as Terraform's -detailed-exitcode does.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";

interface Problem {
  readonly title?: string;
  readonly detail?: string;
  readonly errors?: ReadonlyArray<{ readonly field: string; readonly message: string }>;
}

const say = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const failed = (message: string): number => {
  process.stderr.write(`distributary: ${message}\n`);
  return 1;
};

const connection = (values: { server?: string | undefined; token?: string | undefined }) => {
  const server = (values.server ?? process.env.DISTRIBUTARY_SERVER ?? "http://127.0.0.1:8000").replace(
    /\/+$/,
    "",
  );
  const token = values.token ?? process.env.DISTRIBUTARY_TOKEN;
  return { server, token };
};

/** The server's answer, or why there is none, in words (a problem's errors, one a line). */
const call = async (
  target: { readonly server: string; readonly token: string | undefined },
  path: string,
  init: RequestInit = {},
): Promise<{ ok: true; response: Response } | { ok: false; message: string }> => {
  const headers = new Headers(init.headers);
  if (target.token !== undefined) headers.set("authorization", `Bearer ${target.token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  let response: Response;
  try {
    response = await fetch(`${target.server}${path}`, { ...init, headers });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return { ok: false, message: `cannot reach ${target.server}${cause}` };
  }
  if (response.ok) return { ok: true, response };
  const text = await response.text();
  let problem: Problem = {};
  try {
    problem = JSON.parse(text) as Problem;
  } catch {
    // not problem+json: the status says it
  }
  const lines =
    problem.errors !== undefined && problem.errors.length > 0
      ? problem.errors.map(
          (issue) => `${issue.message.replace(/^([^ ]+:\d+:\d+): /, "$1: ")} (${issue.field})`,
        )
      : [problem.detail ?? problem.title ?? `${response.status} ${response.statusText}`];
  return { ok: false, message: lines.join("\n") };
};

const options = {
  file: { type: "string", short: "f" },
  prune: { type: "boolean" },
  "auto-approve": { type: "boolean" },
  server: { type: "string" },
  token: { type: "string" },
  format: { type: "string" },
} as const;

interface Plan {
  readonly plan_id: string;
  readonly no_changes: boolean;
  readonly text: string;
}

const makePlan = async (
  args: ReadonlyArray<string>,
): Promise<
  { code: number } | { plan: Plan; target: ReturnType<typeof connection>; autoApprove: boolean }
> => {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>["values"];
  try {
    ({ values } = parseArgs({ args: [...args], options }));
  } catch (error) {
    return { code: failed(error instanceof Error ? error.message : String(error)) };
  }
  if (values.file === undefined) return { code: failed("give the document with -f FILE (YAML or JSON)") };
  let text: string;
  try {
    text = await readFile(values.file, "utf8");
  } catch (error) {
    return {
      code: failed(`${values.file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`),
    };
  }
  const target = connection(values);
  const answer = await call(target, "/api/config/plan", {
    method: "POST",
    body: JSON.stringify({ document: text, file: values.file, prune: values.prune === true }),
  });
  if (!answer.ok) return { code: failed(answer.message) };
  return {
    plan: (await answer.response.json()) as Plan,
    target,
    autoApprove: values["auto-approve"] === true,
  };
};

export const planCommand = async (args: ReadonlyArray<string>): Promise<number> => {
  const made = await makePlan(args);
  if ("code" in made) return made.code;
  say(made.plan.text);
  return made.plan.no_changes ? 0 : 2;
};

export const applyCommand = async (args: ReadonlyArray<string>): Promise<number> => {
  const made = await makePlan(args);
  if ("code" in made) return made.code;
  const { plan, target } = made;
  say(plan.text);
  if (plan.no_changes) return 0;
  if (!made.autoApprove) {
    if (!process.stdin.isTTY) return failed("not applied: confirm at a terminal, or give --auto-approve");
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    const reply = await prompt.question("Apply this plan? Only 'yes' applies it: ");
    prompt.close();
    if (reply.trim() !== "yes") return failed("not applied");
  }
  const answer = await call(target, "/api/config/apply", {
    method: "POST",
    body: JSON.stringify({ plan_id: plan.plan_id }),
  });
  if (!answer.ok) return failed(answer.message);
  const result = (await answer.response.json()) as {
    summary: { create: number; change: number; delete: number };
  };
  say(
    `applied: ${result.summary.create} created, ${result.summary.change} changed, ${result.summary.delete} deleted`,
  );
  return 0;
};

export const exportCommand = async (args: ReadonlyArray<string>): Promise<number> => {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>["values"];
  try {
    ({ values } = parseArgs({ args: [...args], options }));
  } catch (error) {
    return failed(error instanceof Error ? error.message : String(error));
  }
  const format = values.format ?? "yaml";
  if (format !== "yaml" && format !== "json") return failed(`--format must be yaml or json, got '${format}'`);
  const answer = await call(connection(values), `/api/config/document?format=${format}`);
  if (!answer.ok) return failed(answer.message);
  process.stdout.write(await answer.response.text());
  return 0;
};
