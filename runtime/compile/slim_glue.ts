/**
 * Trims jco's generated glue once, when a component is compiled: the cache
 * stores the trimmed glue, so every worker imports it straight from disk.
 *
 * jco-transpile 0.15 wraps every host import call in its component-model
 * async bookkeeping: a task for the host call (a promise, a BigInt id, a map
 * entry), a subtask in the caller's task, and a save and restore of the
 * current task; also for the plain WASI 0.2 imports of a guest, where the
 * result is simply what the trampoline lifts and lowers. A hello request
 * makes dozens of such calls, and the bookkeeping cost a third of the
 * worker's time. This rewrite calls each host import's trampoline directly,
 * with a task object that does nothing: lifting, lowering, resource tables
 * and borrows stay jco's code. Imports that may suspend (JSPI) get the same,
 * wrapped in `WebAssembly.Suspending`; jco's guard against suspending a
 * synchronous export goes, as V8 itself traps on that.
 *
 * Exports entered through JSPI with no result (`incoming-handler.handle`)
 * get the same once every host import is called directly: jco makes a task
 * per call (a BigInt id, promises, an entry in a map, an exclusive lock on
 * the instance, a resource-borrow scope) that nothing reads any more. What
 * stays: lowering the arguments, refusing an instance that trapped, marking
 * it trapped when the call traps, and the post-return call; a second entry
 * while a call is in progress traps instead of queueing behind the first.
 * Other exports keep jco's code.
 *
 * What makes this sound is Pier's use of the glue: each in-flight request has
 * an instance of its own, so no other call ever runs inside an instance while
 * one of its host calls is pending, and the host functions never call back
 * into the guest.
 *
 * The rewrite is textual and specific to jco-transpile 0.15's output (the
 * transpiler is pinned, and part of the compile-cache key): a trampoline
 * without exactly the expected shape keeps jco's code, and a glue where any
 * trampoline is used in an unexpected place is left whole.
 *
 * @module
 */

/** This rewrite's version: a compiled entry records which rewrite its glue had. */
export const SLIM_GLUE = "slim-glue-2";

/** What {@link slimGlue} did. */
export interface SlimGlue {
  code: string;
  /** Host imports now called directly. */
  slimmed: number;
  /** Host import trampolines in the glue. */
  trampolines: number;
  /** Exports now entered without jco's task. */
  exports: number;
}

/** A task that does nothing, for host calls; and whether a slimmed export runs. */
const HOST_TASK =
  "  const _pierHostTask = { enterSync() { return true; }, resolve() {}, exit() {}, " +
  "reject() {}, setErrored() {}, componentIdx() { return -1; }, id() { return 0; }, " +
  "getParentSubtask() { return undefined; } };\n  let _pierBusy = false;\n";

const INSTANTIATE =
  /^(export function instantiate\(getCoreModule, imports, instantiateCore = WebAssembly\.instantiate\) \{\n)/m;
const TRAMPOLINE = /^ {2}const _trampoline(\d+) = (async )?function\(/gm;
/** From the task's creation to its entry. */
const PROLOGUE =
  /\n {4}const hostProvided = true;\n[\s\S]*?\n {4}const started = task\.enterSync\(\);\n/;
const ASYNC_PROLOGUE =
  /\n {4}const hostProvided = true;\n[\s\S]*?\n {4}const started = await task\.enter\(\{ isHost: hostProvided \}\);\n {4}if \(!started\) \{\n[\s\S]*?\n {4}\}\n/;
/** The host call, run under the task. */
const CALL =
  /_withGlobalCurrentTaskMeta\(\{\n\s*componentIdx: task\.componentIdx\(\),\n\s*taskID: task\.id\(\),\n\s*fn: \(\) => _trackHostOperation\(\(\) => ([\s\S]*?)\),\n\s*\}\)\n\s*;/;
const ASYNC_CALL =
  /await\s+_withGlobalCurrentTaskMetaAsync\(\{\n\s*componentIdx: task\.componentIdx\(\),\n\s*taskID: task\.id\(\),\n\s*fn: \(\) => _trackHostOperation\(\(\) => ([\s\S]*?)\),\n\s*\}\)\n\s*;/;
/** A trap in an async call: jco rejects the task and returns its promise. */
const ASYNC_TRAP =
  /\n {6}task\.setErrored\(err\);\n {6}task\.reject\(err\);\n {6}task\.exit\(\);\n {6}return task\.completionPromise\(\);\n/;
const RESOLVE = /\n {4}task\.resolve\(\[[^\n]*\]\);\n {4}task\.exit\(\);\n/;
/** Any trace of the bookkeeping left: the trampoline is then left alone. */
const LEFTOVER =
  /parentTask|subtask\b|createTask|started|_withGlobalCurrentTaskMeta|_trackHostOperation|completionPromise/;
/**
 * How the core module's import is bound to a trampoline: through
 * `_suspendingImport` when it may suspend, else through jco's lowering.
 */
const WIRING =
  /^ {2}let trampoline(\d+) = _trampoline\1\.manuallyAsync \? new WebAssembly\.Suspending\(_suspendingImport\(0, _lowerImportBackwardsCompat\.bind\(\n {2}null,\n {2}\{\n([\s\S]*?)importFn: _trampoline\1,\n {2}\},\n {2}\)\)\) : _lowerImportBackwardsCompat\.bind\(\n {2}null,\n {2}\{\n([\s\S]*?)importFn: _trampoline\1,\n {2}\},\n {2}\);/gm;

/** An export wrapper: from its first line to its closing brace. */
const EXPORT = /^ {2}async function [\w$]+\([^)]*\) \{\n[\s\S]*?\n {2}\}\n/gm;
/** From the wrapper's first statement to the start of its body, run under a new task. */
const EXPORT_PROLOGUE =
  /\n\s*const hostProvided = false;\n(\s*getOrCreateAsyncState\(\d+\)\.throwIfTrapped\(\);\n)\s*const \[task, _wasm_call_currentTaskID\] = createNewCurrentTask\(\{\n[\s\S]*?\n\s*return await _withGlobalCurrentTaskMetaAsync\(\{\n\s*taskID: task\.id\(\),\n\s*componentIdx: task\.componentIdx\(\),\n\s*fn: async \(\) => \{\n\s*try \{\n/;
/** The guest call, under the task. */
const EXPORT_CALL =
  /await _withGlobalCurrentTaskMeta\(\{\n\s*taskID: task\.id\(\),\n\s*componentIdx: task\.componentIdx\(\),\n\s*fn: \(\) => (\w+\([\w, ]*\)),\n\s*\}\);/;
/** A trap: jco rejects the task and returns its promise. */
const EXPORT_TRAP =
  /\n\s*task\.setErrored\(err\);\n\s*task\.reject\(err\);\n\s*task\.exit\(\);\n\s*return task\.completionPromise\(\);\n/;
/** The task's end, with no result. */
const EXPORT_RESOLVE = /\n\s*task\.resolve\(\[ret\]\);\n/;
const EXPORT_EXIT = /\n\s*task\.exit\(\);\n/;
/** An error anywhere in the body: jco settles the task, then rethrows. */
const EXPORT_EPILOGUE =
  /\n\s*\} catch \(err\) \{\n\s*if \(!task\.isResolvedState\(\)\) \{\n\s*task\.setErrored\(err\);\n\s*task\.reject\(err\);\n\s*\}\n\s*if \(!task\.isExited\(\)\) \{ task\.exit\(\{ skipExclusiveLockCheck: true \}\); \}\n\s*throw err;\n\s*\}\n\s*\},\n\s*\}\);\n/;
/** jco's debug-log statements (skipped anyway, see below): they name the task. */
const DEBUG_LOG = /\n\s*_debugLog\([^;]*?\);(?=\n)/g;

/** An export as described in the module comment; undefined when its shape is unknown. */
function slimExport(chunk: string): string | undefined {
  const prologue = chunk.match(EXPORT_PROLOGUE);
  if (
    !prologue || !prologue[0].includes("isAsync: false,") ||
    !prologue[0].includes("isManualAsync: true,") || !EXPORT_CALL.test(chunk) ||
    !EXPORT_TRAP.test(chunk) || !EXPORT_RESOLVE.test(chunk) || !EXPORT_EPILOGUE.test(chunk)
  ) return undefined;
  const enter = "\n" + prologue[1] +
    "    if (_pierBusy) throw new WebAssemblyRuntimeError('cannot enter component instance: " +
    "a call is in progress');\n" +
    "    _pierBusy = true;\n    CURRENT_TASK_MAY_BLOCK.value = 1;\n    try {\n";
  const slim = chunk.replace(DEBUG_LOG, "")
    .replace(EXPORT_PROLOGUE, enter)
    .replace(EXPORT_CALL, (_, call: string) => `await ${call};`)
    .replace(EXPORT_TRAP, "\n      throw err;\n")
    .replace(EXPORT_RESOLVE, "\n")
    .replace(EXPORT_EPILOGUE, "\n    } finally {\n      _pierBusy = false;\n    }\n");
  // The last `task.exit()` follows the post-return call, if the export has one.
  const exit = [...slim.matchAll(new RegExp(EXPORT_EXIT, "g"))];
  if (exit.length !== 1) return undefined;
  const done = slim.replace(EXPORT_EXIT, "\n");
  return /\btask\b|_wasm_call_currentTaskID/.test(done) ? undefined : done;
}

/**
 * jco notes every resource rep it hands a guest in a Set it never reads nor
 * prunes: an instance serving many requests grows it without end.
 */
const CREATED_REPS = /^ {4}table\._createdReps\.add\(rep\);\n/m;
const CREATED_REPS_SET = /\._createdReps = new Set\(\);/g;

/** A plain WASI 0.2 call: neither side uses the component-model async ABI. */
const plain = (args: string) =>
  args.includes("isAsync: false,") && args.includes("funcTypeIsAsync: false,");

function slimSync(chunk: string): string | undefined {
  const prologue = chunk.match(PROLOGUE);
  if (!prologue || !prologue[0].includes("isAsync: false,") || !CALL.test(chunk)) return undefined;
  const slim = chunk.replace(PROLOGUE, "\n    const task = _pierHostTask;\n")
    .replace(CALL, (_, call: string) => `(${call});`)
    .replace(RESOLVE, "\n");
  return LEFTOVER.test(slim) || /\bawait\b/.test(slim) ? undefined : slim;
}

function slimAsync(chunk: string): string | undefined {
  const prologue = chunk.match(ASYNC_PROLOGUE);
  if (!prologue || !prologue[0].includes("isAsync: false,") || !ASYNC_CALL.test(chunk)) {
    return undefined;
  }
  const slim = chunk.replace(ASYNC_PROLOGUE, "\n    const task = _pierHostTask;\n")
    .replace(ASYNC_CALL, (_, call: string) => `await (${call});`)
    .replace(ASYNC_TRAP, "\n      throw err;\n")
    .replace(RESOLVE, "\n");
  // Its results go to memory: a value returned would reach the guest through the Suspending.
  return LEFTOVER.test(slim) || /\breturn\b/.test(slim) ? undefined : slim;
}

/** Rewrites jco's `component.js` as described above; unchanged when its shape is unknown. */
export function slimGlue(source: string): SlimGlue {
  const unchanged = { code: source, slimmed: 0, trampolines: 0, exports: 0 };
  if (!INSTANTIATE.test(source)) return unchanged;
  // The imports wired through jco's lowering that a direct call can replace.
  const wired = new Set<string>();
  for (const [, n, suspending, lowered] of source.matchAll(WIRING)) {
    if (plain(suspending) && plain(lowered)) wired.add(n);
  }
  const sync = new Set<string>();
  const suspending = new Set<string>();
  let code = "";
  let at = 0;
  let trampolines = 0;
  for (const start of source.matchAll(TRAMPOLINE)) {
    trampolines++;
    const n = start[1];
    const isAsync = start[2] !== undefined;
    const name = `\n  _trampoline${n}.fnName = `;
    const end = source.indexOf(name, start.index);
    if (!wired.has(n) || end < 0) continue;
    // An async trampoline is one jco marks as suspending; a sync one must not be marked.
    const marked = source.startsWith(
      `\n  _trampoline${n}.manuallyAsync = true;`,
      source.indexOf("\n", end + name.length),
    );
    if (isAsync !== marked) continue;
    const chunk = source.slice(start.index, end);
    const slim = isAsync ? slimAsync(chunk) : slimSync(chunk);
    if (!slim) continue;
    code += source.slice(at, start.index) + slim;
    at = end;
    (isAsync ? suspending : sync).add(n);
  }
  code += source.slice(at);
  // A slimmed trampoline resolves no subtask: it must be called directly.
  code = code.replace(WIRING, (all, n: string) => {
    if (sync.has(n)) return `  let trampoline${n} = _trampoline${n};`;
    if (suspending.has(n)) {
      return `  let trampoline${n} = new WebAssembly.Suspending(_trampoline${n});`;
    }
    return all;
  });
  // Each slimmed trampoline appears in its definition, its name, its `manuallyAsync` mark if it
  // has one, and its wiring; anywhere else, the glue has a shape this rewrite does not know.
  const uses = new Map<string, number>();
  for (const [, n] of code.matchAll(/\b_trampoline(\d+)\b/g)) uses.set(n, (uses.get(n) ?? 0) + 1);
  for (const n of sync) if (uses.get(n) !== 3) return unchanged;
  for (const n of suspending) if (uses.get(n) !== 4) return unchanged;
  // With a host import left under jco's bookkeeping, the guest's calls need the export's task.
  let exports = 0;
  if (sync.size + suspending.size === trampolines) {
    code = code.replace(EXPORT, (chunk) => {
      const slim = slimExport(chunk);
      if (slim) exports++;
      return slim ?? chunk;
    });
  }
  const setUses = code.match(CREATED_REPS_SET)?.length ?? 0;
  if (CREATED_REPS.test(code) && code.match(/\b_createdReps\b/g)!.length === setUses + 1) {
    code = code.replace(CREATED_REPS, "");
  }
  code = code.replace(INSTANTIATE, `$1${HOST_TASK}`)
    // jco's debug log needs `process.env.JCO_DEBUG`, which no worker has: skip building its
    // arguments too.
    .replace(/^(\s*)_debugLog\(/gm, "$10 && _debugLog(");
  return { code, slimmed: sync.size + suspending.size, trampolines, exports };
}
