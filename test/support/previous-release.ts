/**
 * The previous release, runnable beside this tree: commit PREVIOUS_RELEASE materialised once in a cache
 * directory (`git archive` of the commit, as a release tarball would be), set up as its own scripts/setup.sh
 * sets up a tree (npm packages, the WebAssembly packet core, the stripped modules), and run through its own
 * `bin/distributary`. Tests that roll a fleet from it to this code (test/lab/fleet-roll.test.ts) start old nodes
 * from `previousRelease()`'s root.
 *
 * Its npm packages are this tree's (a link to node_modules) when both package-lock.json files are the same,
 * else `npm ci` installs its own. The cache is ~/.cache/distributary/releases/<commit> (or
 * DISTRIBUTARY_RELEASE_CACHE/<commit>); a finished one has a `.ready` file, and is made in a directory of its
 * own first, then renamed into place, so two test processes never see a half-made one. A clone without the
 * commit (a shallow clone) fails in words, saying how to fetch it.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../..");

/**
 * The release before the last schema change: the landed main when the fleet's hitless moves began (migration 9,
 * the lease row's cut, came after it).
 */
export const PREVIOUS_RELEASE = "a886bbe4c4e229077345ad25b852986a2b5f251d";

export interface Release {
  readonly commit: string;
  /** The tree: `${root}/bin/distributary` runs it. */
  readonly root: string;
  readonly bin: string;
  /** What its package.json says. */
  readonly version: string;
}

const cacheDir = () =>
  process.env.DISTRIBUTARY_RELEASE_CACHE ?? join(homedir(), ".cache/distributary/releases");

const git = async (args: ReadonlyArray<string>) =>
  (await run("git", ["-C", ROOT, ...args], { maxBuffer: 256 * 1024 * 1024, encoding: "buffer" })).stdout;

const describe = (root: string, commit: string): Release => ({
  commit,
  root,
  bin: join(root, "bin/distributary"),
  version: "",
});

const withVersion = async (release: Release): Promise<Release> => ({
  ...release,
  version: (JSON.parse(await readFile(join(release.root, "package.json"), "utf8")) as { version: string })
    .version,
});

/**
 * A release set up before. Its node_modules may be a link to a clone that is gone (CI's clones are thrown
 * away, the cache is kept): linked again to this tree's when the lockfiles are still the same.
 */
const cached = async (commit: string): Promise<Release> => {
  const root = join(cacheDir(), commit);
  const modules = join(root, "node_modules");
  if (!existsSync(join(modules, ".bin/node"))) {
    const [theirs, ours] = await Promise.all([
      readFile(join(root, "package-lock.json")),
      readFile(join(ROOT, "package-lock.json")),
    ]);
    if (
      !theirs.equals(ours) ||
      !(await lstat(modules).then(
        (info) => info.isSymbolicLink(),
        () => false,
      ))
    )
      throw new Error(
        `the previous release in ${root} has no npm packages: remove that directory and run again to set it up`,
      );
    await rm(modules);
    await symlink(join(ROOT, "node_modules"), modules);
  }
  return withVersion(describe(root, commit));
};

/**
 * The release of `commit` (any name git knows for it), made in the cache the first time (seconds: the packet
 * core is compiled, the npm packages linked).
 */
export const previousRelease = async (commit = PREVIOUS_RELEASE): Promise<Release> => {
  const ready = (full: string) => existsSync(join(cacheDir(), full, ".ready"));
  if (/^[0-9a-f]{40}$/.test(commit) && ready(commit)) return cached(commit);
  const full = await git(["rev-parse", "--verify", "--quiet", `${commit}^{commit}`]).then(
    (out) => out.toString().trim(),
    () => undefined,
  );
  if (full === undefined)
    throw new Error(
      `the previous release, commit ${commit}, is not in this clone's history (a shallow clone?): the test ` +
        "runs that release's code beside this one. Fetch the history with `git fetch --unshallow` (or clone " +
        "without --depth) and run it again",
    );
  return setUp(full);
};

const setUp = async (commit: string): Promise<Release> => {
  const root = join(cacheDir(), commit);
  if (existsSync(join(root, ".ready"))) return cached(commit);
  await mkdir(cacheDir(), { recursive: true });
  const part = `${root}.part-${process.pid}`;
  await rm(part, { recursive: true, force: true });
  await mkdir(part);
  try {
    const tar = await git(["archive", "--format=tar", commit]);
    await new Promise<void>((resolve, reject) => {
      const child = execFile("tar", ["-x", "-C", part], (error) => (error ? reject(error) : resolve()));
      child.stdin?.end(tar);
    });
    const [theirs, ours] = await Promise.all([
      readFile(join(part, "package-lock.json")),
      readFile(join(ROOT, "package-lock.json")),
    ]);
    const env = { ...process.env, PATH: `${join(part, "node_modules/.bin")}:${process.env.PATH ?? ""}` };
    if (theirs.equals(ours)) await symlink(join(ROOT, "node_modules"), join(part, "node_modules"));
    else await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: part, env });
    // What its scripts/setup.sh builds after the packages: the packet core, then the stripped modules.
    await run("bash", ["scripts/build-core.sh"], { cwd: part, env, maxBuffer: 64 * 1024 * 1024 });
    if (existsSync(join(part, "scripts/strip-sources.ts")))
      await run(
        join(part, "node_modules/.bin/node"),
        ["--disable-warning=ExperimentalWarning", "scripts/strip-sources.ts"],
        { cwd: part, env, maxBuffer: 64 * 1024 * 1024 },
      );
    await writeFile(join(part, ".ready"), `${commit}\n`);
    // Another process may have finished first: its copy is as good as this one.
    await rename(part, root).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(join(root, ".ready"))) throw error;
      await rm(part, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(part, { recursive: true, force: true });
    throw new Error(`the previous release (${commit}) could not be set up in ${part}: ${String(error)}`);
  }
  return withVersion(describe(root, commit));
};
