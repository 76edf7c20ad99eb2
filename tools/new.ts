/**
 * Scaffolds a component: `deno task new NAME` writes `components/NAME.ts`
 * (a working component with one route) and `components/NAME.permissions.json`
 * granting nothing. Existing files are never overwritten.
 *
 * @module
 */
import { relative } from "node:path";
import { componentNameProblem } from "../runtime/discovery.ts";
import { fromFileUrl, join } from "../runtime/paths.ts";

/** The source of a new component named `name`. */
export function template(name: string): string {
  return `/**
 * ${name}: describe what this component does.
 *
 *   GET /${name}    a greeting as JSON
 *
 * Build it with \`deno task build components/${name}.ts\`; grant capabilities
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
export async function scaffold(name: string, dir: string): Promise<string[]> {
  // The build takes a source starting with `_` for a shared module, not a component.
  if (componentNameProblem(name) || name.startsWith("_")) {
    throw new Error(`"${name}" is not a component name: use a-z, 0-9, "-" and "_" (not first)`);
  }
  const files: [string, string][] = [
    [join(dir, `${name}.ts`), template(name)],
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
  const [name] = Deno.args;
  const dir = fromFileUrl(new URL("../components", import.meta.url));
  if (!name || Deno.args.length > 1) {
    console.error("usage: deno task new NAME");
    Deno.exit(2);
  }
  try {
    const written = (await scaffold(name, dir)).map((path) => relative(Deno.cwd(), path));
    console.log(`created ${written.join(" and ")}`);
    console.log(`next: deno task build ${written[0]}   (then deno task start)`);
  } catch (error) {
    console.error(`new: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
