/**
 * Builds a WebAssembly component from a JavaScript or TypeScript entry:
 * bundle it with `deno bundle` (WIT imports stay external), then hand the
 * bundle to a guest engine against Pier's world in `wit/`.
 *
 * @module
 */
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
import { componentize as componentizeJs } from "@bytecodealliance/componentize-js";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco-transpile/wasm-tools";
import { dirname, fromFileUrl } from "../runtime/paths.ts";
import { writeAtomic } from "../runtime/write_atomic.ts";
import { sha256 } from "../runtime/hash.ts";

/** The WIT directory and world every Pier component targets. */
const WIT_DIR = fromFileUrl(new URL("../wit", import.meta.url));
const WORLD = "trailbase:component/interfaces";

/** The guest engines, by the name a component selects them with, and their pinned packages. */
export const ENGINES = {
  /** SpiderMonkey (StarlingMonkey) via componentize-js: the default. */
  spidermonkey: "@bytecodealliance/componentize-js@0.23.0",
  /** QuickJS via componentize-qjs (`sync` ABI). */
  quickjs: "componentize-qjs@0.4.5",
} as const;

/** The name of a guest engine. */
export type EngineName = keyof typeof ENGINES;

/**
 * What a componentized build depends on besides its bundle: the engine's
 * package and every file of the WIT it is built against, so that a change
 * to the world builds components again.
 */
export async function componentizeKey(engine: EngineName): Promise<string> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else files.push(path);
    }
  };
  await walk(WIT_DIR);
  const texts = await Promise.all(
    files.sort().map(async (path) => [
      path.slice(WIT_DIR.length),
      await Deno.readTextFile(path),
    ]),
  );
  return `${ENGINES[engine]}\n${await sha256(JSON.stringify(texts))}`;
}

/** The engine that builds a component whose source names none. */
export const DEFAULT_ENGINE: EngineName = "spidermonkey";

/** A bundling or componentizing failure, with the tool's own message. */
export class BuildError extends Error {}

/** Options of {@link bundle}. */
export interface BundleOptions {
  /** The `deno.json` whose imports resolve the entry's bare specifiers. */
  config?: string;
  /** The working directory; the bundle's module comments name paths relative to it. */
  cwd?: string;
  /** An import map that takes the place of the config's imports. */
  importMap?: string;
}

/** Bundles `entry` and its imports into one ES module. */
export async function bundle(entry: string, options: BundleOptions = {}): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--format=esm",
      "--external=wasi:*",
      "--external=trailbase:*",
      ...(options.config ? [`--config=${options.config}`] : []),
      ...(options.importMap ? [`--import-map=${options.importMap}`] : []),
      entry,
    ],
    cwd: options.cwd,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const message = new TextDecoder().decode(stderr).replace(/\n*Stack backtrace:[\s\S]*$/, "")
      .trim();
    throw new BuildError(message || `deno bundle failed (${code})`);
  }
  return new TextDecoder().decode(stdout);
}

/** A raw guest (a test fixture, a bench guest) names a world other than {@link WORLD} so. */
const WORLD_PRAGMA = /^\/\/ @world (\S+)$/m;

/** The world the raw guest at `source` names with a `// @world <name>` line, if any. */
export async function worldOf(source: string): Promise<string | undefined> {
  return WORLD_PRAGMA.exec(await Deno.readTextFile(source))?.[1];
}

/**
 * `out` when a build is there already; else `make`'s bytes written there
 * atomically (test files running at once may build the same component).
 */
export async function buildOnce(out: string, make: () => Promise<Uint8Array>): Promise<string> {
  if (await Deno.stat(out).then(() => true, () => false)) return out;
  const bytes = await make();
  await Deno.mkdir(dirname(out), { recursive: true });
  await writeAtomic(out, bytes);
  return out;
}

let preopened = false;

/**
 * componentize-js and jco's wasm-tools read the WIT through jco's WASI shim,
 * which starts with no preopens: open just the WIT directory, under its own
 * path. The published types describe the browser shim; the Node shim takes
 * host paths.
 */
function preopenWit() {
  if (preopened) return;
  _setPreopens({ [WIT_DIR]: WIT_DIR } as never);
  preopened = true;
}

/**
 * Builds a component from a core module in WebAssembly text written to the
 * canonical ABI of `world` (no language runtime inside): parse, embed the
 * world, make the component, with jco's wasm-tools.
 */
export async function componentizeWat(wat: string, world = WORLD): Promise<Uint8Array> {
  preopenWit();
  try {
    const core = await parse(wat);
    return await componentNew(await componentEmbed({ binary: core, witPath: WIT_DIR, world }));
  } catch (error) {
    throw new BuildError(String((error as Error).message ?? error));
  }
}

/** Options of {@link componentize}. */
export interface ComponentizeOptions {
  /** The guest engine; SpiderMonkey unless given. */
  engine?: EngineName;
  /** The world in `wit/` to build against; {@link WORLD} unless given. */
  world?: string;
}

/** Componentizes one bundled ES module into component bytes. */
export async function componentize(
  source: string,
  options: ComponentizeOptions = {},
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "pier-build-" });
  try {
    const sourcePath = `${dir}/component.js`;
    await Deno.writeTextFile(sourcePath, source);
    if (options.engine === "quickjs") {
      const { componentize: componentizeQjs } = await import("componentize-qjs");
      const { component } = await componentizeQjs({
        witPath: WIT_DIR,
        world: options.world ?? WORLD,
        jsSource: source,
        jsPath: sourcePath,
        sync: true,
      });
      return new Uint8Array(component);
    }
    preopenWit();
    const { component } = await componentizeJs({
      sourcePath,
      witPath: WIT_DIR,
      worldName: options.world ?? WORLD,
    });
    return component;
  } catch (error) {
    // Wizer appends a native stack and a repeat of any rejection: keep the JavaScript part.
    const message = (error as Error).message
      .replace(/\n*Stack backtrace:[\s\S]*$/, "")
      .replace(/\nAdditionally, some promises were rejected[\s\S]*?(?=\nStack:)/, "")
      .trim();
    throw new BuildError(message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
