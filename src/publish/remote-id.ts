/** An AMI or snapshot id: `kiln audit` reads it from AWS rather than from a file (no SDK needed to tell). */
export const remoteImageId = /^(ami|snap)-[0-9a-f]{8,17}$/;
