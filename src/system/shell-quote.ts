/** One POSIX shell word, single-quoted: nothing in it is expanded. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
