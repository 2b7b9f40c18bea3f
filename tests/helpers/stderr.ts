// What a connector writes to stderr while a call runs, line by line (its
// warnings and errors go through console.error).

/** Runs `fn`, collecting every console.error line meanwhile. */
export async function capturingStderr<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.error = original;
  }
}
