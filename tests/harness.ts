/**
 * Test harness: builds test components from their sources with the real
 * toolchain (cached by source hash in `.build/`), and runs Pier as a real
 * process, started exactly as `deno task start` starts it.
 *
 * @module
 */
import {
  buildOnce,
  bundle,
  componentize,
  componentizeKey,
  worldOf,
} from "../tools/componentize.ts";
import { sha256 } from "../runtime/hash.ts";
import { fromFileUrl } from "../runtime/paths.ts";

export { type Pier, type PierSetup, startPier } from "../tools/pier_process.ts";
import type { Pier } from "../tools/pier_process.ts";
import { scratchDir } from "./scratch.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const BUILD_DIR = `${ROOT}/.build/components`;

/**
 * Builds a component from `source` (a JS/TS entry, against the world a `// @world <name>` line
 * names), reusing an earlier build of the same bundle.
 */
export async function buildComponent(source: string): Promise<string> {
  const js = await bundle(source);
  const world = await worldOf(source);
  const key = await sha256((await componentizeKey("spidermonkey")) + (world ?? "") + js);
  return await buildOnce(
    `${BUILD_DIR}/${key.slice(0, 24)}.wasm`,
    () => componentize(js, { world }),
  );
}

/** Builds the named fixtures of `tests/fixtures/`, two at a time. */
export async function buildFixtures<N extends string>(names: N[]): Promise<Record<N, string>> {
  const built = {} as Record<N, string>;
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name; name = queue.shift()) {
      const started = performance.now();
      built[name] = await buildComponent(`${ROOT}/tests/fixtures/${name}.js`);
      console.log(`  built fixture ${name} in ${(performance.now() - started).toFixed(0)} ms`);
    }
  };
  await Promise.all([worker(), worker()]);
  return built;
}

/** Debian's Chromium, installed with apt on first use (the tests run as root on CI machines). */
export async function ensureChromium(): Promise<string> {
  const path = "/usr/bin/chromium";
  const present = () => Deno.stat(path).then(() => true, () => false);
  if (await present()) return path;
  const apt = (...args: string[]) =>
    new Deno.Command("apt-get", { args, stdout: "null", stderr: "inherit" }).output();
  console.log("  installing chromium with apt-get (once per machine)");
  if (!(await apt("install", "-y", "chromium")).success) {
    await apt("update");
    await apt("install", "-y", "chromium");
  }
  if (!await present()) throw new Error("could not install chromium (apt-get install chromium)");
  return path;
}

/** The DOM of `url` after a headless Chromium loaded it and ran its scripts. */
export async function renderInBrowser(url: string): Promise<string> {
  const chromium = await ensureChromium();
  const profile = await scratchDir("pier-chromium-");
  try {
    const { stdout, success } = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=2000",
        "--dump-dom",
        url,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) throw new Error(`chromium could not render ${url}`);
    return new TextDecoder().decode(stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** A streamed text body: its first chunk, the rest, and when each arrived (ms after the call). */
export async function readTimed(
  response: Response,
): Promise<{ first: string; rest: string; firstAt: number; allAt: number }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const started = performance.now();
  const first = (await reader.read()).value ?? "";
  const firstAt = performance.now() - started;
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
  return { first, rest, firstAt, allAt: performance.now() - started };
}

/**
 * A new components dir holding each component's `.wasm` and, when given, its permission manifest;
 * and a data dir beside it (not created). Both are removed when the test process ends.
 */
export async function componentsWithManifests(
  components: Record<string, [wasm: string, manifest?: unknown]>,
): Promise<{ componentsDir: string; dataDir: string }> {
  const root = await scratchDir("pier-components-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  for (const [name, [wasm, manifest]] of Object.entries(components)) {
    await Deno.copyFile(wasm, `${componentsDir}/${name}.wasm`);
    if (manifest) {
      await Deno.writeTextFile(
        `${componentsDir}/${name}.permissions.json`,
        JSON.stringify(manifest),
      );
    }
  }
  return { componentsDir, dataDir: `${root}/data` };
}

/** Milliseconds `/_/health` takes to answer; fails after `limitMs` (the server is frozen). */
export async function healthMs(pier: Pier, limitMs = 2000): Promise<number> {
  const started = performance.now();
  const response = await pier.fetch("/_/health", { signal: AbortSignal.timeout(limitMs) });
  if (response.status !== 200) throw new Error(`/_/health answered ${response.status}`);
  await response.body?.cancel();
  return performance.now() - started;
}
