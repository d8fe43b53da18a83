/**
 * Every line of one header a request sent, as sent. Node keeps the first
 * of some repeated headers (Host, content-type, authorization) and joins
 * others with ", ", so neither tells how many lines came nor what each
 * held; `rawHeaders` (name, value, name, value... for HTTP/1.1 and HTTP/2
 * alike) does.
 */
export function headerLines(rawHeaders: readonly string[], name: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === name.length && rawHeaders[i].toLowerCase() === name) lines.push(rawHeaders[i + 1]);
  }
  return lines;
}
