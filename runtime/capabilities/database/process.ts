/**
 * The server's side of one database process (`child.ts`): spawns it on
 * first use, sends it requests and matches its answers, forwards the SQL
 * function calls its statements make, and kills it when a statement runs past
 * its caller's deadline (node:sqlite cannot interrupt one). A killed process
 * takes its open transaction with it (WAL: an uncommitted transaction is
 * simply not there), and the next request starts a fresh one.
 *
 * @module
 */
import { dirname, fromFileUrl } from "../../paths.ts";
import { databaseProcessFlags } from "../../sandbox.ts";
import {
  frame,
  FrameBatch,
  FrameReader,
  type FunctionCall,
  type FunctionResult,
  type FunctionSpec,
  type Reply,
  type Request,
  reusedChunks,
  type WireValue,
} from "./wire.ts";

const CHILD = fromFileUrl(new URL("./child.ts", import.meta.url));

/** How long an ended read transaction's COMMIT may wait for a statement to go with. */
const END_DELAY_MS = 50;

/** How long a closed process may take to end before it is killed (Pier waits for it to stop). */
const CLOSE_WAIT_MS = 2000;

/** When a statement must be done (`performance.now()` time), and the limit it comes from. */
export interface Deadline {
  at: number;
  limitMs: number;
}

/** What a database process needs from its owner. */
export interface ProcessHooks {
  /** Every SQL function registered so far (a new process registers them all). */
  functions(): FunctionSpec[];
  /** Runs SQL function `name` for a statement of the process. */
  call(name: string, args: WireValue[]): Promise<WireValue>;
  /** The process was killed or died: its transaction is gone. */
  stopped(process: DbProcess, reason: string): void;
}

/** A request sent and not answered yet. */
interface Pending {
  request: Request;
  deadline?: Deadline;
  /** A standalone read: sent again to a new process when it was only queued behind the culprit. */
  again: boolean;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** How long a statement that starts after its request's time limit may still run. */
const LATE_START_MS = 100;

/** One database process, started when first needed and again after it was killed. */
export class DbProcess {
  #child: Deno.ChildProcess | undefined;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  /**
   * Requests sent and not answered yet, oldest first: the process answers in
   * order, one at a time, so the first is the one it runs.
   */
  #pending: Pending[] = [];
  /** Since when the first of {@link #pending} runs, or the process idles (`performance.now()`). */
  #since = performance.now();
  /** The one timer that stops the running statement at its deadline (see {@link #watch}). */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  /** A read transaction ended: its COMMIT goes with the next statement (see {@link endLater}). */
  #endPending = false;
  #endTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Frames for the process: what a turn of the event loop queued goes out in
   * one write (each write wakes the process, and the process answers what one
   * read brought in one write: `child.ts`).
   */
  #out = new FrameBatch(
    // A write to a process that died fails; its exit fails the pending requests.
    (bytes) => this.#stdin?.write(bytes).catch(() => {}),
    queueMicrotask,
  );

  constructor(
    readonly path: string,
    readonly grant: "read" | "write",
    readonly hooks: ProcessHooks,
  ) {}

  /** True while the process runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** True while a request is unanswered. */
  get busy(): boolean {
    return this.#pending.length > 0;
  }

  /** Requests sent and not answered yet. */
  get queued(): number {
    return this.#pending.length;
  }

  /**
   * How long the process has been running its current request, or, when it
   * has none, been idle (ms).
   */
  get sinceMs(): number {
    return performance.now() - this.#since;
  }

  /**
   * Sends `request` and resolves with its answer's value; rejects with the
   * process's error, or when the process is killed (past `deadline`, or by
   * {@link kill}). A standalone read (`again`) queued behind a statement
   * that gets the process killed is sent again to the next process: it had
   * not started (the process runs one request at a time, in order).
   */
  request(request: Request, deadline?: Deadline, again = false): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.#push({ request, deadline, again, resolve, reject })
    );
  }

  #push(pending: Pending) {
    if (!this.#child) this.#spawn();
    if (pending.request.op === "run" && this.#endPending) {
      pending.request = { ...pending.request, endFirst: true };
      this.#endPending = false;
    }
    if (this.#pending.length === 0) this.#since = performance.now();
    this.#pending.push(pending);
    this.#send(pending.request);
    this.#watch();
  }

  /**
   * Keeps one timer, at the deadline of the request the process runs (the
   * first unanswered one; one that starts past its deadline gets
   * {@link LATE_START_MS}). A timer armed for an earlier request that was
   * answered meanwhile fires early and is armed again: cheaper than a timer
   * per request.
   */
  #watch() {
    const first = this.#pending[0];
    if (!first?.deadline || this.#timerAt <= this.#stopAt(first.deadline)) return;
    this.#stopTimer();
    this.#timerAt = this.#stopAt(first.deadline);
    this.#timer = setTimeout(() => {
      this.#stopTimer();
      const running = this.#pending[0]?.deadline;
      if (!running) return;
      if (performance.now() < this.#stopAt(running)) return this.#watch();
      this.kill(
        `statement stopped: it ran past its request's time limit of ${running.limitMs} ms`,
        true,
      );
    }, Math.max(0, this.#timerAt - performance.now()));
  }

  #stopTimer() {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** When the running request with `deadline` is stopped. */
  #stopAt(deadline: Deadline): number {
    return Math.max(deadline.at, this.#since + LATE_START_MS);
  }

  /**
   * Ends the read transaction on the process without a round trip of its
   * own: its COMMIT goes with the next statement, or alone once the process
   * has been idle for {@link END_DELAY_MS} (a read transaction changed
   * nothing, and only holds its snapshot meanwhile).
   */
  endLater(): void {
    this.#endPending = true;
    this.#endTimer ??= setTimeout(() => {
      this.#endTimer = undefined;
      if (!this.#endPending) return;
      this.#endPending = false;
      this.request({ op: "commit" }).catch(() => {});
    }, END_DELAY_MS);
  }

  /**
   * Kills the process: every unanswered request fails with `reason`, but
   * standalone reads queued behind the one it ran, which go to a new process.
   * `runningFailed`: the request it ran is the culprit (it fails too, even a
   * standalone read); otherwise a standalone read it ran is sent again.
   */
  kill(reason: string, runningFailed = false): void {
    const child = this.#child;
    if (!child) return;
    this.#endPending = false;
    this.#child = undefined;
    this.#stdin = undefined;
    this.#out.clear();
    this.#stopTimer();
    try {
      child.kill("SIGKILL");
    } catch {
      // it exited meanwhile
    }
    const pending = this.#pending;
    this.#pending = [];
    const again = pending.filter((each, i) => each.again && !(i === 0 && runningFailed));
    for (const each of pending) if (!again.includes(each)) each.reject(new Error(reason));
    this.hooks.stopped(this, reason);
    for (const each of again) this.#push(each);
  }

  /**
   * Ends the process once it has answered what it was sent (its connection
   * closes); resolves when it has exited. One still running a statement after
   * {@link CLOSE_WAIT_MS} is killed.
   */
  close(): Promise<void> {
    // A deferred COMMIT would start the process again: closing its connection ends the read.
    clearTimeout(this.#endTimer);
    this.#endTimer = undefined;
    this.#endPending = false;
    this.#stopTimer();
    const child = this.#child;
    // What this turn queued goes first: the process answers it, then ends.
    this.#out.flush();
    this.#stdin?.close().catch(() => {});
    this.#child = undefined;
    this.#stdin = undefined;
    if (!child) return Promise.resolve();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // it exited meanwhile
      }
    }, CLOSE_WAIT_MS);
    return child.status.then(() => clearTimeout(timer));
  }

  #spawn() {
    const dir = dirname(this.path);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        ...databaseProcessFlags(dir),
        CHILD,
        this.path,
        this.grant,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    void this.#read(child);
    child.status.then((status) => {
      if (this.#child === child) {
        this.kill(`the database process exited (code ${status.code})`, true);
      }
    });
    const functions = this.hooks.functions();
    if (functions.length) this.request({ op: "functions", functions }).catch(() => {});
  }

  #send(message: Request | FunctionResult) {
    this.#out.push(frame(message));
  }

  async #read(child: Deno.ChildProcess) {
    const frames = new FrameReader();
    try {
      for await (const chunk of reusedChunks(child.stdout)) {
        if (this.#child !== child) return;
        frames.push(chunk);
        for (let message = frames.next(); message !== undefined; message = frames.next()) {
          this.#receive(child, message as Reply | FunctionCall);
        }
      }
    } catch {
      // killed: its requests were failed then
    }
  }

  #receive(child: Deno.ChildProcess, message: Reply | FunctionCall) {
    if ("op" in message) {
      // A statement calls a component's SQL function; the process waits for the result.
      this.hooks.call(message.name, message.args).then(
        (value): FunctionResult => ({ op: "result", ok: true, value }),
        (error): FunctionResult => ({ op: "result", ok: false, error: (error as Error).message }),
      ).then((result) => {
        if (this.#child === child) this.#send(result);
      });
      return;
    }
    const pending = this.#pending.shift();
    if (!pending) return;
    // The next one starts now; the timer, armed for an earlier deadline, fires early if at all.
    this.#since = performance.now();
    this.#watch();
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new Error(message.error));
  }
}
