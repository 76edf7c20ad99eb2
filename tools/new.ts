/**
 * Scaffolds a component: `deno task new NAME` writes `components/NAME.ts`
 * (a working component with one route) and `components/NAME.permissions.json`
 * granting nothing. `--engine native` makes it a native component (V8 in a
 * process of its own: the source's `// @pier-engine native` line);
 * `--engine wasm`, the default, a WebAssembly one. Existing files are never
 * overwritten.
 *
 * @module
 */
import { relative } from "node:path";
import { componentNameProblem } from "../runtime/discovery.ts";
import { fromFileUrl, join } from "../runtime/paths.ts";

/** The engines a new component may be scaffolded for. */
export type NewEngine = "wasm" | "native";

/** The source of a new component named `name`, built by `engine`. */
export function template(name: string, engine: NewEngine = "wasm"): string {
  const pragma = engine === "native" ? "// @pier-engine native\n" : "";
  const output = engine === "native" ? `${name}.js (a native component)` : `${name}.wasm`;
  return `${pragma}/**
 * ${name}: describe what this component does.
 *
 *   GET /${name}    a greeting as JSON
 *
 * Build it into ${output} with \`deno task build components/${name}.ts\`; grant capabilities
 * (db, kv, net, read) in ${name}.permissions.json.
 */
import { defineComponent, json } from "@pier/guest";

export default defineComponent({
  metadata: { displayName: ${JSON.stringify(name)} },
  routes: {
    "GET /${name}": (_req, { query }) => json({ hello: query.get("name") ?? "world" }),
  },
});
`;
}

/**
 * Writes `NAME.ts` and `NAME.permissions.json` into `dir`; throws when the
 * name is not a valid component name or either file exists.
 */
export async function scaffold(
  name: string,
  dir: string,
  engine: NewEngine = "wasm",
): Promise<string[]> {
  // The build takes a source starting with `_` for a shared module, not a component.
  if (componentNameProblem(name) || name.startsWith("_")) {
    throw new Error(`"${name}" is not a component name: use a-z, 0-9, "-" and "_" (not first)`);
  }
  const files: [string, string][] = [
    [join(dir, `${name}.ts`), template(name, engine)],
    [join(dir, `${name}.permissions.json`), "{}\n"],
  ];
  for (const [path] of files) {
    if (await Deno.stat(path).then(() => true, () => false)) {
      throw new Error(`${path} already exists`);
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const [path, text] of files) await Deno.writeTextFile(path, text, { createNew: true });
  return files.map(([path]) => path);
}

if (import.meta.main) {
  const args = [...Deno.args];
  const at = args.findIndex((arg) => arg === "--engine" || arg.startsWith("--engine="));
  const engine = at === -1
    ? "wasm"
    : args[at].includes("=")
    ? args.splice(at, 1)[0].slice("--engine=".length)
    : args.splice(at, 2)[1];
  const [name] = args;
  const dir = fromFileUrl(new URL("../components", import.meta.url));
  if (!name || args.length > 1 || (engine !== "wasm" && engine !== "native")) {
    console.error("usage: deno task new [--engine wasm|native] NAME");
    Deno.exit(2);
  }
  try {
    const written = (await scaffold(name, dir, engine)).map((path) => relative(Deno.cwd(), path));
    console.log(`created ${written.join(" and ")}`);
    console.log(`next: deno task build ${written[0]}   (then deno task start)`);
  } catch (error) {
    console.error(`new: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
