/** Registers a command's work with the top-level handler, which awaits it and maps errors to exit codes. */
export type Run = (work: Promise<number>) => Promise<void>;
