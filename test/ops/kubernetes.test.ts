/**
 * The fleet's Kubernetes manifests (deploy/kubernetes/): rendered by a real kustomize (`kubectl kustomize`),
 * every object validated against Kubernetes' own schemas (kubernetes-models), and what running a fleet needs
 * checked on the rendered objects: host networking, the node's id and URL from the downward API, secrets by
 * reference only, Guaranteed resources and SYS_NICE, bounded scratch volumes, recordings on a volume of their
 * own (a claim in the example overlay), no service-account token, a drain before the stop, liveness that never
 * asks the database, readiness that means joined, one node out at a time, and the schema's Job.
 */
import { execFileSync } from "node:child_process";
import { ConfigProvider, Effect, Option } from "effect";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { nodeUrl } from "../../src/effects/config/settings.ts";

type Manifest = Record<string, unknown> & {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
};

const render = (dir: string): ReadonlyArray<Manifest> =>
  parseAllDocuments(
    execFileSync("kubectl", ["kustomize", `deploy/kubernetes/${dir}`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  ).map((document) => document.toJSON() as Manifest);

/** Kubernetes' schema of the object's kind, through the model class kubernetes-models generates from it. */
const validate = async (manifest: Manifest): Promise<void> => {
  const module = (await import(`kubernetes-models/${manifest.apiVersion}/${manifest.kind}`)) as Record<
    string,
    new (
      data: unknown,
    ) => { validate: () => void }
  >;
  const Model = module[manifest.kind];
  if (Model === undefined) throw new Error(`no model for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(manifest).validate();
};

const one = (manifests: ReadonlyArray<Manifest>, kind: string) => {
  const found = manifests.filter((manifest) => manifest.kind === kind);
  expect(found.length, kind).toBe(1);
  // biome-ignore lint/suspicious/noExplicitAny: a rendered manifest, read as the JSON it is
  return found[0] as Manifest & Record<string, any>;
};

describe("the Kubernetes manifests", () => {
  const base = render("base");
  const example = render("overlays/example");

  it("render from the base and the example overlay, and every object passes Kubernetes' schema", async () => {
    expect(base.map((manifest) => manifest.kind).sort()).toEqual([
      "ConfigMap",
      "DaemonSet",
      "Job",
      "Namespace",
      "PodDisruptionBudget",
    ]);
    for (const manifest of [...base, ...example]) await validate(manifest);
    // The schema is really applied: a wrong type anywhere is refused.
    const broken = structuredClone(one(base, "DaemonSet"));
    broken.spec.template.spec.terminationGracePeriodSeconds = "sixty";
    await expect(validate(broken)).rejects.toThrow(/terminationGracePeriodSeconds/);
    expect(one(example, "DaemonSet").spec.template.spec.containers[0].image).toBe(
      "registry.example.net/distributary:0.1.0",
    );
  });

  it("a node per labelled media host, on the host's network, named by Kubernetes' node name and reached at the host's address", () => {
    const pod = one(base, "DaemonSet").spec.template.spec;
    expect(pod.nodeSelector).toEqual({ "distributary.io/media": "true" });
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe("ClusterFirstWithHostNet");
    const env = new Map<string, Record<string, Record<string, Record<string, string>>>>(
      pod.containers[0].env.map((entry: { name: string }) => [entry.name, entry]),
    );
    expect(env.get("DISTRIBUTARY_NODE_ID")?.valueFrom?.fieldRef?.fieldPath).toBe("spec.nodeName");
    expect(env.get("HOST_IP")?.valueFrom?.fieldRef?.fieldPath).toBe("status.hostIP");
    expect(env.get("DISTRIBUTARY_NODE_URL")?.value).toBe("http://$(HOST_IP):8000");
    // The kubelet expands $(HOST_IP) only from variables listed before the one that names it.
    const order = pod.containers[0].env.map((entry: { name: string }) => entry.name);
    expect(order.indexOf("HOST_IP")).toBeLessThan(order.indexOf("DISTRIBUTARY_NODE_URL"));
    for (const [name, key] of [
      ["DISTRIBUTARY_DATABASE_URL", "database-url"],
      ["DISTRIBUTARY_ADMIN_TOKEN", "admin-token"],
    ] as const)
      expect(env.get(name)?.valueFrom?.secretKeyRef).toEqual({ name: "distributary", key });
  });

  it("holds no secret: no Secret object, no password or token in any value", () => {
    expect(base.some((manifest) => manifest.kind === "Secret")).toBe(false);
    expect(JSON.stringify(base)).not.toMatch(/postgres(ql)?:\/\/[^"]*@/);
    expect(Object.keys(one(base, "ConfigMap").data).filter((key) => /TOKEN|DATABASE_URL/.test(key))).toEqual(
      [],
    );
  });

  it("Guaranteed resources in whole cores, the image's unprivileged user, SYS_NICE and nothing else", () => {
    const pod = one(base, "DaemonSet").spec.template.spec;
    const container = pod.containers[0];
    expect(container.resources.requests).toEqual(container.resources.limits);
    expect(Number.isInteger(Number(container.resources.limits.cpu))).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true });
    expect(container.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["SYS_NICE"] });
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    const overlay = one(example, "DaemonSet").spec.template.spec.containers[0].resources;
    expect(overlay.requests).toEqual(overlay.limits);
  });

  it("bounds every scratch volume, records on a volume of its own (a claim in the example), mounts no service-account token", () => {
    for (const [rendered, kind] of [
      [base, "DaemonSet"],
      [base, "Job"],
      [example, "DaemonSet"],
      [example, "Job"],
    ] as const) {
      const pod = one(rendered, kind).spec.template.spec;
      expect(pod.automountServiceAccountToken, kind).toBe(false);
      for (const volume of pod.volumes ?? [])
        if ("emptyDir" in volume)
          expect(volume.emptyDir.sizeLimit, `${kind} ${volume.name}`).toMatch(/^\d+[MG]i$/);
    }
    // file:// and HLS outputs write under the recordings directory: its own volume, not the config directory's.
    expect(one(base, "ConfigMap").data.DISTRIBUTARY_RECORDINGS_DIR).toBe("/recordings");
    const mounts = (rendered: ReadonlyArray<Manifest>) =>
      Object.fromEntries(
        one(rendered, "DaemonSet").spec.template.spec.containers[0].volumeMounts.map(
          (mount: { name: string; mountPath: string }) => [mount.mountPath, mount.name],
        ),
      );
    expect(mounts(base)).toEqual({ "/config": "config", "/recordings": "recordings", "/tmp": "tmp" });
    expect(mounts(example)).toEqual(mounts(base));
    const volume = (rendered: ReadonlyArray<Manifest>) =>
      one(rendered, "DaemonSet").spec.template.spec.volumes.find(
        (candidate: { name: string }) => candidate.name === "recordings",
      );
    expect(volume(base).emptyDir.sizeLimit).toBeDefined();
    expect(volume(example)).toEqual({
      name: "recordings",
      persistentVolumeClaim: { claimName: "distributary-recordings" },
    });
    const claim = one(example, "PersistentVolumeClaim");
    expect(claim.metadata).toMatchObject({ name: "distributary-recordings", namespace: "distributary" });
    // Every node mounts it, and a standby that takes a channel over records where the holder did.
    expect(claim.spec.accessModes).toEqual(["ReadWriteMany"]);
    expect(claim.spec.resources.requests.storage).toMatch(/^\d+[GT]i$/);
  });

  it("drains before the stop, with time to spare; one node out at a time", () => {
    const pod = one(base, "DaemonSet").spec.template.spec;
    const preStop = pod.containers[0].lifecycle.preStop.exec.command.join(" ");
    expect(preStop).toContain("/api/nodes/");
    expect(preStop).toContain("/drain");
    expect(preStop).toContain("process.env.DISTRIBUTARY_ADMIN_TOKEN");
    // Above the drain's own limit (30 s) and the clean stop after it.
    expect(preStop).toContain("AbortSignal.timeout(30000)");
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(one(base, "PodDisruptionBudget").spec.maxUnavailable).toBe(1);
    expect(one(base, "DaemonSet").spec.updateStrategy.rollingUpdate.maxUnavailable).toBe(1);
    expect(one(base, "PodDisruptionBudget").spec.selector.matchLabels).toEqual(
      one(base, "DaemonSet").spec.selector.matchLabels,
    );
  });

  it("liveness asks only the process, readiness whether the node joined the fleet", () => {
    const container = one(base, "DaemonSet").spec.template.spec.containers[0];
    expect(container.livenessProbe.httpGet.path).toBe("/api/health");
    expect(container.readinessProbe.httpGet.path).toBe("/api/ready");
  });

  it("brings the schema up with a Job that takes the database's URL from the Secret, not its arguments", () => {
    const job = one(base, "Job").spec.template.spec;
    expect(job.containers[0].args).toEqual(["migrate"]);
    expect(job.containers[0].env).toEqual([
      {
        name: "DISTRIBUTARY_DATABASE_URL",
        valueFrom: { secretKeyRef: { name: "distributary", key: "database-url" } },
      },
    ]);
  });

  it("a node URL whose $(HOST_IP) no one expanded is refused at start in words, never registered as is", async () => {
    const load = (value: string) =>
      Effect.runPromise(
        Effect.either(
          Effect.withConfigProvider(
            nodeUrl,
            ConfigProvider.fromMap(new Map([["DISTRIBUTARY_NODE_URL", value]])),
          ),
        ),
      );
    const refused = await load("http://$(HOST_IP):8000");
    expect(refused._tag).toBe("Left");
    expect(String(refused._tag === "Left" ? refused.left : "")).toMatch(
      /DISTRIBUTARY_NODE_URL.*define the variable before DISTRIBUTARY_NODE_URL/s,
    );
    expect((await load("not a url"))._tag).toBe("Left");
    const accepted = await load("http://198.18.0.10:8000");
    expect(accepted._tag === "Right" ? Option.getOrUndefined(accepted.right) : undefined).toBe(
      "http://198.18.0.10:8000",
    );
  });
});
