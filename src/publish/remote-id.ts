/** An AMI or snapshot id: `kiln audit` reads it from AWS rather than from a file (no SDK needed to tell). */
export const remoteImageId = /^(ami|snap)-[0-9a-f]{8,17}$/;

/** A snapshot id as EC2 writes them; anything else (from a hostile or garbled answer, or a journal) is refused before use. */
export const snapshotIdPattern = /^snap-[0-9a-f]{8,17}$/;
