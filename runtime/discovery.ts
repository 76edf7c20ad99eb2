/**
 * Finds the components in the components directory: every `*.wasm` file
 * (WebAssembly) or `*.js` file (a native component, see
 * `isolation/native_host.ts`) or link to one directly inside it. Anything
 * else so named (a FIFO, a device, a file over the size limit) is refused, as
 * is a `.wasm` and a `.js` of the same name; directories are skipped.
 *
 * @module
 */
import { COMPONENT_FILE, refusal } from "./files.ts";

/** A component file found on disk. */
export interface Discovered {
  name: string;
  path: string;
  /** `native` for a `.js`, `wasm` for a `.wasm`. */
  engine: "wasm" | "native";
}

/** Component files by extension, and the engine that runs each. */
const EXTENSIONS = { ".wasm": "wasm", ".js": "native" } as const;

/** Whether `path` names a component file (of either engine) by its extension. */
export function isComponentFile(path: string): boolean {
  return Object.keys(EXTENSIONS).some((ext) => path.endsWith(ext));
}

/** A file that looks like a component but cannot be one. */
export interface Refused {
  file: string;
  reason: string;
}

const COMPONENT_NAME = /^[a-z0-9_-]+$/;

/**
 * Why `name` cannot name a component, or undefined when it can: the rule for
 * a `.wasm` file's name without the extension here, and for a source's name
 * without `.ts` in the build and scaffolding tools (`tools/`).
 */
export function componentNameProblem(name: string): string | undefined {
  if (COMPONENT_NAME.test(name)) return undefined;
  return `component name "${name}" must match [a-z0-9_-]+`;
}

/** Lists components in `dir`; a missing directory has none. */
export async function discover(
  dir: string,
): Promise<{ found: Discovered[]; refused: Refused[] }> {
  const found: Discovered[] = [];
  const refused: Refused[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { found, refused };
    throw error;
  }
  const files = new Map<string, string>();
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const ext = entry.name.endsWith(".wasm") ? ".wasm" : entry.name.endsWith(".js") ? ".js" : "";
    if (!ext) continue;
    const path = `${dir}/${entry.name}`;
    const name = entry.name.slice(0, -ext.length);
    const nameProblem = componentNameProblem(name);
    if (nameProblem) {
      refused.push({ file: path, reason: `${nameProblem}: rename the file` });
      continue;
    }
    if (entry.isDirectory) continue;
    const other = files.get(name);
    if (other !== undefined) {
      refused.push({
        file: path,
        reason: `${other} and ${path} are both component "${name}": remove one of them`,
      });
      continue;
    }
    files.set(name, path);
    const info = await Deno.stat(path).catch(() => undefined);
    const problem = info ? refusal(path, info, COMPONENT_FILE) : "link does not point to a file";
    if (problem) refused.push({ file: path, reason: problem });
    else found.push({ name, path, engine: EXTENSIONS[ext] });
  }
  // The first of the two was found before the second came: it is refused too.
  const twice = new Set(
    refused.map(({ file }) => file.slice(dir.length + 1).replace(/\.\w+$/, "")),
  );
  return { found: found.filter(({ name }) => !twice.has(name)), refused };
}
