/**
 * Errors as RFC 9457 `application/problem+json`: `type`, `title`, `status`, `detail`, and for a refused body
 * `errors` listing each field and what is wrong with it. `detail` is written for a person to act on and never
 * holds a secret.
 */
import { randomUUID } from "node:crypto";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ControlError, FieldIssue } from "../domain/base/errors.ts";
import { maskSecrets } from "../effects/events/logging.ts";

export interface Problem {
  readonly status: ContentfulStatusCode;
  readonly title: string;
  readonly detail: string;
  readonly errors?: ReadonlyArray<FieldIssue> | undefined;
}

const slug = (title: string) => title.toLowerCase().replace(/[^a-z0-9]+/g, "-");

export const problemResponse = (problem: Problem, headers: Record<string, string> = {}): Response =>
  new Response(
    JSON.stringify({
      type: `urn:distributary:problem:${slug(problem.title)}`,
      title: problem.title,
      status: problem.status,
      detail: maskSecrets(problem.detail),
      ...(problem.errors === undefined
        ? {}
        : { errors: problem.errors.map((issue) => ({ ...issue, message: maskSecrets(issue.message) })) }),
    }),
    { status: problem.status, headers: { "content-type": "application/problem+json", ...headers } },
  );

export const fromControlError = (error: ControlError): Problem => {
  const base = { detail: error.message, errors: error.errors };
  switch (error.reason) {
    case "invalid":
      return { ...base, status: 400, title: "Invalid request" };
    case "not_found":
      return { ...base, status: 404, title: "Not found" };
    case "conflict":
      return { ...base, status: 409, title: "Conflict" };
    case "start_failed":
      return { ...base, status: 409, title: "Channel could not start" };
    case "unavailable":
      return { ...base, status: 501, title: "Not available" };
    case "upstream":
      return { ...base, status: 502, title: "AWS refused or failed" };
    case "store_unconfirmed":
      return { ...base, status: 503, title: "Configuration change unconfirmed; reload before trying again" };
    case "store_failed":
      return { ...base, status: 503, title: "Configuration could not be saved; nothing was changed" };
    case "rate_limited":
      return { ...base, status: 429, title: "Too many requests" };
    case "forbidden":
      return { ...base, status: 403, title: "Forbidden" };
  }
};

/** A refusal's problem answer, with `Retry-After` when it says when to come back. */
export const controlErrorResponse = (error: ControlError): Response =>
  problemResponse(
    fromControlError(error),
    error.retry_after_s === undefined ? {} : { "retry-after": String(error.retry_after_s) },
  );

/**
 * An unexpected failure: the answer gives a reference and nothing else (no paths, process ids or internals);
 * the service log has the details under the same reference.
 */
export const internalError = (): { readonly problem: Problem; readonly reference: string } => {
  const reference = randomUUID().slice(0, 8);
  return {
    reference,
    problem: {
      status: 500,
      title: "Internal error",
      detail: `the request failed unexpectedly; the service log has the details under reference ${reference}`,
    },
  };
};
