/**
 * Prints the deno.json of the image's runtime stage: the project's, with only
 * the npm imports the server process loads (jco's transpiler, croner), and
 * `nodeModulesDir: "manual"`, so that `deno run` uses the `node_modules` the
 * image ships as it is: it never installs the toolchain's packages, which the
 * runtime stage leaves out (see the Dockerfile).
 *
 * ```sh
 * deno run --allow-read=deno.json docker/runtime_config.ts deno.json > runtime/deno.json
 * ```
 *
 * @module
 */

/** The npm imports the server process loads (`runtime/compile/transpile.ts`, `runtime/scheduling/cron.ts`). */
export const RUNTIME_IMPORTS = ["@bytecodealliance/jco-transpile/component", "croner"];

/** `config` (a parsed deno.json) keeping only the imports serving needs and using `node_modules` as is. */
export function runtimeConfig(config: { imports: Record<string, string> }): object {
  const imports = Object.fromEntries(
    Object.entries(config.imports).filter(([name, target]) =>
      RUNTIME_IMPORTS.includes(name) || !target.startsWith("npm:")
    ),
  );
  return { ...config, nodeModulesDir: "manual", imports };
}

if (import.meta.main) {
  const config = JSON.parse(await Deno.readTextFile(Deno.args[0] ?? "deno.json"));
  console.log(JSON.stringify(runtimeConfig(config), null, 2));
}
