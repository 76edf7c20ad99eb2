/**
 * The launcher's server processes: `--processes` of them serve one port
 * together (`SO_REUSEPORT`: the kernel spreads new connections over them),
 * sharing the data dir. When the command a server process needs changes (a
 * permission manifest grants a new host or variable, a component is added or
 * removed: the server's Deno permissions are fixed at its start), or on
 * SIGHUP, a new set starts beside the old one; once every new process
 * listens, the old ones hand over (SIGUSR2, see `shutdown.ts`) and exit.
 * Runs no component code.
 *
 * @module
 */
import { isComponentFile } from "./discovery.ts";
import { log } from "./log.ts";

/** What a server process writes to stdout, with its port, once it listens. */
export const READY = "pier-ready";

/**
 * How long a new server process may take to listen (it may compile
 * components) before a hand-over gives up on it.
 */
const READY_TIMEOUT_MS = 300_000;

/** Quiet time after the last change in the components dir before the launcher reads it. */
const SETTLE_MS = 300;

/** One server process, its stdout read for its ready line (the rest is passed on). */
class ServerProcess {
  readonly #child: Deno.ChildProcess;
  /** Resolves with the port once it listens; rejects if it exits first. */
  readonly ready: Promise<number>;
  /** Resolves with its exit code. */
  readonly exited: Promise<number>;
  /** Set once the supervisor stops it on purpose. */
  stopping = false;

  constructor(args: string[], env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      stdin: "null",
      stdout: "piped",
    }).spawn();
    this.exited = this.#child.status.then((status) => status.code);
    const ready = Promise.withResolvers<number>();
    this.ready = ready.promise;
    this.ready.catch(() => {}); // awaited by whoever starts it
    void this.#readStdout(ready.resolve).finally(() =>
      this.exited.then((code) =>
        ready.reject(new Error(`server process ${this.pid} exited with ${code} before it listened`))
      )
    );
  }

  get pid(): number {
    return this.#child.pid;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // exited meanwhile
    }
  }

  async #readStdout(onReady: (port: number) => void): Promise<void> {
    let pending = "";
    for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += text;
      for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        const [word, port] = line.split(" ");
        if (word === READY && port) onReady(Number(port));
        else console.log(line);
      }
    }
  }
}

/** How the supervisor starts server processes. */
export interface SupervisorOptions {
  /** Server processes at a time. */
  processes: number;
  /**
   * Reads the components dir as it is now; gives the `deno run` arguments of
   * a server process for it, listening on a port.
   */
  command(): Promise<(port: number) => string[]>;
  /** Environment variables added to the server processes'. */
  env: Record<string, string>;
}

/** Runs the server processes, replaces them on a change, stops them on a signal. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  /** The processes serving now, all started with {@link #args}. */
  #current: ServerProcess[] = [];
  #args: string[] = [];
  #port = 0;
  /** Every process not yet exited: the current ones, new ones starting, old ones handing over. */
  readonly #live = new Set<ServerProcess>();
  readonly #done = Promise.withResolvers<number>();
  #exitCode = 0;
  #stopping = false;
  #reloads: Promise<void> = Promise.resolve();

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  /**
   * Starts the server processes on `port` (0: the first one picks a free
   * port, the others take it); resolves with the launcher's exit code once
   * they have all exited.
   */
  async run(port: number): Promise<number> {
    const command = await this.#options.command();
    const first = this.#spawn(command(port));
    try {
      this.#port = await first.ready;
    } catch {
      return await first.exited;
    }
    this.#current = [first];
    this.#args = command(this.#port);
    const others = Array.from(
      { length: this.#options.processes - 1 },
      () => this.#spawn(this.#args),
    );
    this.#current = [first, ...others];
    try {
      await Promise.all(others.map((each) => each.ready));
    } catch (error) {
      this.#fail((error as Error).message, 1);
    }
    return await this.#done.promise;
  }

  /**
   * Forwards `signal` to every server process (each shuts down gracefully);
   * {@link run} ends once all have exited.
   */
  stop(signal: Deno.Signal): void {
    this.#stopping = true;
    for (const each of this.#live) each.kill(signal);
  }

  /**
   * Starts a new set of server processes with the command the components dir
   * needs now, if it differs from the current one's (or `always`), and hands
   * over to them once they all listen. A new process that fails to start
   * leaves the current ones serving. Reloads run one after another; `prepare`
   * runs first (in turn), and `check`, once a hand-over is due, may refuse it
   * by throwing (the log says why).
   */
  reload(
    reason: string,
    options: {
      always?: boolean;
      prepare?: () => Promise<void>;
      check?: () => Promise<void>;
    } = {},
  ): Promise<void> {
    this.#reloads = this.#reloads.then(async () => {
      if (this.#stopping || this.#current.length === 0) return;
      await options.prepare?.();
      const args = (await this.#options.command())(this.#port);
      const same = args.length === this.#args.length && args.every((a, i) => a === this.#args[i]);
      if (same && !options.always) return;
      await options.check?.();
      await this.#handOver(reason, args);
    }).catch((error) => log.error(`${reason}: ${error?.message ?? error}`));
    return this.#reloads;
  }

  async #handOver(reason: string, args: string[]): Promise<void> {
    const fresh = Array.from({ length: this.#options.processes }, () => this.#spawn(args));
    const pids = (list: ServerProcess[]) => list.map((each) => each.pid).join(", ");
    log.info(
      `${reason}: starting new server process(es) (pid ${pids(fresh)}); pid ${
        pids(this.#current)
      } serve meanwhile`,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.all(fresh.map((each) => each.ready)),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`not listening after ${READY_TIMEOUT_MS / 1000} s`)),
            READY_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (error) {
      for (const each of fresh) {
        each.stopping = true;
        each.kill("SIGTERM");
      }
      if (!this.#stopping) {
        log.error(
          `${reason}: hand-over abandoned: ${(error as Error).message}; pid ${
            pids(this.#current)
          } serve on`,
        );
      }
      return;
    } finally {
      clearTimeout(timer);
    }
    if (this.#stopping) return;
    const old = this.#current;
    this.#current = fresh;
    this.#args = args;
    for (const each of old) {
      each.stopping = true;
      each.kill("SIGUSR2");
    }
    await Promise.all(old.map((each) => each.exited));
    log.info(`${reason}: hand-over done: pid ${pids(fresh)} serve`);
  }

  #spawn(args: string[]): ServerProcess {
    const server = new ServerProcess(args, this.#options.env);
    this.#live.add(server);
    void server.exited.then((code) => {
      this.#live.delete(server);
      if (!server.stopping && this.#current.includes(server)) {
        this.#fail(`server process ${server.pid} exited with ${code}`, code);
      }
      if (this.#stopping && this.#live.size === 0) this.#done.resolve(this.#exitCode);
    });
    return server;
  }

  /** A serving process ended on its own: the others stop, and the launcher exits with `code`. */
  #fail(message: string, code: number): void {
    if (this.#stopping) return;
    if (this.#live.size > 0) log.error(`${message}; stopping the others`);
    this.#exitCode = code;
    this.stop("SIGTERM");
    if (this.#live.size === 0) this.#done.resolve(code);
  }
}

/**
 * Calls `onChange` when a component file or permission manifest in `dir` is added,
 * changed or removed (once things settle); ends when `signal` aborts. A
 * missing directory is not watched.
 */
export async function watchComponents(
  dir: string,
  onChange: () => void,
  signal: AbortSignal,
): Promise<void> {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(dir, { recursive: false });
  } catch {
    return;
  }
  signal.addEventListener("abort", () => watcher.close(), { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  for await (const { paths } of watcher) {
    if (!paths.some((path) => isComponentFile(path) || path.endsWith(".permissions.json"))) {
      continue;
    }
    clearTimeout(timer);
    timer = setTimeout(onChange, SETTLE_MS);
  }
  clearTimeout(timer);
}
