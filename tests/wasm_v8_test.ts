/**
 * What the request path leaves to V8's garbage collector (issue 15, the
 * fourth round in `docs/request-path.md`).
 */
import assert from "node:assert/strict";

/**
 * Runs `table` (an expression making a table) through the churn of requests
 * in flight, 8 at a time, in a process of its own with `gc()` exposed, and
 * returns the megabytes that survived two minor GCs. Each entry holds 8 KB.
 */
async function keptByChurn(table: string): Promise<number> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `
      import { IdTable } from ${
        JSON.stringify(new URL("../runtime/id_table.ts", import.meta.url).href)
      };
      const gc = (globalThis as unknown as { gc(options?: { type: string }): void }).gc;
      const table = ${table};
      const inFlight: number[] = [];
      let next = 1;
      const request = () => {
        const id = next++;
        table.set(id, { id, payload: new Array(1000).fill(id) });
        inFlight.push(id);
        if (inFlight.length > 8) table.delete(inFlight.shift()!);
      };
      for (let i = 0; i < 5; i++) request();
      gc(); // after a major GC the table in use is in the old generation, as in a running server
      const before = Deno.memoryUsage().heapUsed;
      for (let i = 0; i < 1000; i++) request();
      gc({ type: "minor" });
      gc({ type: "minor" });
      console.log((Deno.memoryUsage().heapUsed - before) / 1e6);
      `,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--v8-flags=--expose-gc", `--allow-read=${script}`, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    return Number(new TextDecoder().decode(stdout));
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("an IdTable's finished entries do not survive minor GCs (a Map's do)", async () => {
  // The control: what the request paths used before. Every request's 8 KB survives.
  const map = await keptByChurn("new Map<number, unknown>()");
  assert.ok(map > 4, `a Map kept ${map} MB (V8 no longer keeps a replaced table's chain?)`);
  const idTable = await keptByChurn("new IdTable<unknown>()");
  assert.ok(idTable < 1, `an IdTable kept ${idTable} MB of 1000 finished entries`);
});
