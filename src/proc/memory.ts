// Large message buffers become garbage as fast as a restore streams, but V8
// counts their memory (outside its heap) lazily: measured, an exporter fed a
// 300 MiB dump peaked at 200-300 MiB of RSS, nearly all of it buffers already
// written to pg_restore and waiting for a collection. When the runtime exposes
// gc() (the launchers and compiled builds run with --expose-gc), a collection
// after every COLLECT_EVERY bytes of such buffers keeps the peak near what is
// live (a few MiB in flight). The buffers die young, so a minor collection
// (a scavenge) frees them; a full one, on the bundle's heap, costs enough at
// one per 8 MiB to slow a restore measurably, where the scavenge keeps it on
// par with the reference plugin (figures: docs/BENCHMARKS.md, "Restore").
// Without gc() nothing changes.

const COLLECT_EVERY = 8 * 1024 * 1024;

type Collect = (options?: { type: "minor" | "major" }) => void;

/** Paces young collections by the bytes of short-lived buffers allocated. */
export class GcPacer {
  #since = 0;

  /** @param collect the collector to call; default: the runtime's gc(), when exposed */
  constructor(readonly collect?: Collect) {}

  /** Notes `bytes` of short-lived buffer allocated; collects when enough has piled up. */
  shortLived(bytes: number): void {
    this.#since += bytes;
    if (this.#since < COLLECT_EVERY) return;
    this.#since = 0;
    const gc = this.collect ?? (globalThis as { gc?: Collect }).gc;
    if (typeof gc === "function") gc({ type: "minor" });
  }
}
