/**
 * The build of a native component (`// @pier-engine native`): one bundled
 * ES module, SDK included and no imports left, whose SDK speaks Pier's
 * process protocol (`guest/native_backend.ts` in place of `guest/backend.ts`).
 * Its first line records the build's key, as the custom section of a `.wasm`
 * does.
 *
 * @module
 */
import { basename, dirname, join, toFileUrl } from "../runtime/paths.ts";

/** The engine name of native components in the `// @pier-engine` pragma. */
export const NATIVE_ENGINE = "native";

/** What a native build's key covers besides its bundle. */
export const NATIVE_KEY = "pier-native@1";

/** The SDK's engine seam and the module a native build puts in its place. */
const SEAM = new URL("../guest/backend.ts", import.meta.url);
const NATIVE_BACKEND = new URL("../guest/native_backend.ts", import.meta.url);

const STAMP_PREFIX = "// pier-build ";

/** The bundled entry of a native component: the source's default export, checked. */
export function nativeEntryModule(source: string): string {
  const url = JSON.stringify(toFileUrl(source).href);
  const where = JSON.stringify(basename(source));
  return `import * as entry from ${url};
const component = entry.default;
if (typeof component?.pierNative !== "function") {
  throw new Error(${where} + " must export default defineComponent({ ... }) from @pier/guest");
}
export default component;
`;
}

/**
 * An import map with the imports of `config` (a `deno.json`) and the SDK's
 * seam replaced by the native backend, written into `dir`; returns its path.
 * The seam is replaced wherever the config's `@pier/guest` points.
 */
export async function nativeImportMap(config: string, dir: string): Promise<string> {
  const { imports = {} } = JSON.parse(await Deno.readTextFile(config)) as {
    imports?: Record<string, string>;
  };
  const base = toFileUrl(`${dirname(config)}/`);
  const resolved = Object.fromEntries(
    Object.entries(imports).map((
      [key, value],
    ) => [key, /^\.\.?\//.test(value) ? new URL(value, base).href : value]),
  );
  const seams = new Set([SEAM.href]);
  if (resolved["@pier/guest"]?.startsWith("file:")) {
    seams.add(new URL("./backend.ts", resolved["@pier/guest"]).href);
  }
  for (const seam of seams) resolved[seam] = NATIVE_BACKEND.href;
  const path = join(dir, `import-map-${crypto.randomUUID()}.json`);
  await Deno.writeTextFile(path, JSON.stringify({ imports: resolved }));
  return path;
}

/** Module specifiers the bundle left as imports: a native component may have none. */
export function leftImports(bundle: string): string[] {
  return [...bundle.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']/gm)].map((m) =>
    m[1]
  );
}

/** The native module for `bundle`, its first line recording `key`. */
export function stampJs(bundle: string, key: string): Uint8Array {
  return new TextEncoder().encode(`${STAMP_PREFIX}${key}\n${bundle}`);
}

/** The key recorded by {@link stampJs} in the first bytes of a `.js`, if any. */
export function jsStampOf(head: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(head.subarray(0, STAMP_PREFIX.length + 64));
  return text.startsWith(STAMP_PREFIX) ? text.slice(STAMP_PREFIX.length) : undefined;
}
