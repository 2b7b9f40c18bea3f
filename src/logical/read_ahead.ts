// Read-ahead of dumps. plakar opens the files of a backup one (or a few) at a
// time; were each Open to start its dump, on a cluster of many small
// databases every file would pay a tool's start, its connection and the
// round trips of the Open and its ack one after the other. Here, when plakar
// opens dump k, dump k+1 starts too (READ_AHEAD dumps ahead at most), and its
// output gathers in its pipe (1 MiB, widened: src/proc/pipes.ts) while plakar
// handles k. A small database is then dumped by the time plakar opens it: its
// pg_dump has exited and holds nothing on the server. A larger one blocks on
// its full pipe, holding its snapshot and its ACCESS SHARE locks until plakar
// opens the file: one dump at most, READ_AHEAD beyond what plakar has opened.
//
// The dump started ahead is handed to its own Open, so a failure (permission
// denied, lock_wait_timeout) surfaces there, as it would have without
// read-ahead, never earlier and never lost. When plakar acknowledges the file
// without opening it, or the import is stopped, or the connector closes, the
// dump is cancelled (its tool killed) and awaited. It takes a max_parallel_dumps
// slot like any other, only a free one, and gives it back when an Open would
// wait for it (src/logical/dump_slots.ts).

import type { DumpSlots } from "./dump_slots.ts";

/** How many dumps may run ahead of the last one plakar opened. */
export const READ_AHEAD = 1;

type Stream = ReadableStream<Uint8Array>;

/** Starts one tool; `onExit` frees the slot it holds (ToolSpec.onExit). */
export type StartDump = (onExit: () => void) => Stream | Promise<Stream>;

/** One dump started ahead of its Open. */
interface Ahead {
  /** Its stdout, or its failure to start; awaited by its Open. */
  stream: Promise<Stream>;
  /** `exited`: the tool has exited (finished into its pipe, or failed): it holds no slot. */
  tool: { exited: boolean };
}

interface Dump {
  start: StartDump;
  state: "idle" | "ahead" | "opened" | "released";
  ahead?: Ahead;
}

/** What an ImportEntry needs: content on Open, cleanup on an ack without Open. */
export interface DumpHandle {
  open: () => Promise<Stream>;
  release: () => Promise<void>;
}

/** The dumps of one import, in file order, each started at its Open or one Open ahead. */
export class DumpChain {
  readonly #dumps: Dump[] = [];
  readonly #slots: DumpSlots;
  readonly #depth: number;
  #stopped = false;

  constructor(slots: DumpSlots, depth = READ_AHEAD) {
    this.#slots = slots;
    this.#depth = depth;
    slots.onContention = () => this.#giveSlotBack();
  }

  /** Adds the next dump in file order. */
  add(start: StartDump): DumpHandle {
    const dump: Dump = { start, state: "idle" };
    const index = this.#dumps.push(dump) - 1;
    return { open: () => this.#open(index), release: () => this.#release(dump) };
  }

  #open(index: number): Promise<Stream> {
    const dump = this.#dumps[index];
    let stream: Promise<Stream>;
    if (dump.state === "ahead") {
      stream = dump.ahead!.stream;
      dump.ahead = undefined;
    } else if (dump.state === "idle") {
      // Takes its slot (or queues for it) before any read-ahead below looks.
      stream = this.#slots.start(dump.start);
    } else {
      return Promise.reject(new Error(`this file was already ${dump.state}`));
    }
    dump.state = "opened";
    const last = Math.min(index + this.#depth, this.#dumps.length - 1);
    for (let next = index + 1; next <= last; next++) this.#startAhead(this.#dumps[next]);
    return stream;
  }

  #startAhead(dump: Dump): void {
    if (this.#stopped || dump.state !== "idle") return;
    const tool = { exited: false };
    const stream = this.#slots.tryStart((release) =>
      dump.start(() => {
        tool.exited = true;
        release();
      })
    );
    if (!stream) return;
    // A failure is for its Open to report: not an unhandled rejection meanwhile.
    stream.catch(() => {});
    dump.state = "ahead";
    dump.ahead = { stream, tool };
  }

  /** An Open waits for a slot: the dump furthest ahead still running gives its own up. */
  #giveSlotBack(): void {
    for (let i = this.#dumps.length - 1; i >= 0; i--) {
      const dump = this.#dumps[i];
      if (dump.state !== "ahead" || dump.ahead!.tool.exited) continue;
      const ahead = dump.ahead!;
      // Started again at its own Open, as without read-ahead.
      dump.state = "idle";
      dump.ahead = undefined;
      void cancel(ahead);
      return;
    }
  }

  /** plakar acknowledged the file without opening it. */
  async #release(dump: Dump): Promise<void> {
    if (dump.state === "idle") dump.state = "released";
    if (dump.state !== "ahead") return;
    const ahead = dump.ahead!;
    dump.state = "released";
    dump.ahead = undefined;
    await cancel(ahead);
  }

  /**
   * No more read-ahead (the import was stopped, the connector closes): every
   * dump started ahead and not opened is killed and awaited. A later Open
   * starts its dump itself, as without read-ahead.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#dumps.map(async (dump) => {
      if (dump.state !== "ahead") return;
      const ahead = dump.ahead!;
      dump.state = "idle";
      dump.ahead = undefined;
      await cancel(ahead);
    }));
  }
}

/** Kills a dump started ahead (cancelling a tool's stdout kills it) and waits for it. */
async function cancel(ahead: Ahead): Promise<void> {
  const stream = await ahead.stream.catch(() => undefined);
  await stream?.cancel().catch(() => {});
}
