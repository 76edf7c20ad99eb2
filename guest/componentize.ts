/**
 * Builds a WebAssembly component from a JavaScript or TypeScript entry:
 * bundle it with `deno bundle` (WIT imports stay external), then hand the
 * bundle to a guest engine against Pier's world in `wit/`.
 *
 * @module
 */
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
import { componentize as componentizeJs } from "@bytecodealliance/componentize-js";
import { fromFileUrl } from "../runtime/paths.ts";

/** The WIT directory and world every Pier component targets. */
export const WIT_DIR = fromFileUrl(new URL("../wit", import.meta.url));
export const WORLD = "trailbase:component/interfaces";

/** The engine that builds components; part of every build cache key. */
export const ENGINE = "@bytecodealliance/componentize-js@0.23.0";

/** A bundling or componentizing failure, with the tool's own message. */
export class BuildError extends Error {}

/** Bundles `entry` and its imports into one ES module. */
export async function bundle(entry: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--format=esm",
      "--external=wasi:*",
      "--external=trailbase:*",
      entry,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new BuildError(new TextDecoder().decode(stderr).trim() || `deno bundle failed (${code})`);
  }
  return new TextDecoder().decode(stdout);
}

let preopened = false;

/** Componentizes one bundled ES module into component bytes. */
export async function componentize(source: string): Promise<Uint8Array> {
  if (!preopened) {
    // componentize-js reads the WIT through jco's WASI shim, which starts with no preopens.
    // The published types describe the browser shim; the Node shim takes host paths.
    _setPreopens({ "/": "/" } as never);
    preopened = true;
  }
  const dir = await Deno.makeTempDir({ prefix: "pier-build-" });
  try {
    const sourcePath = `${dir}/component.js`;
    await Deno.writeTextFile(sourcePath, source);
    const { component } = await componentizeJs({
      sourcePath,
      witPath: WIT_DIR,
      worldName: WORLD,
    });
    return component;
  } catch (error) {
    throw new BuildError((error as Error).message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
