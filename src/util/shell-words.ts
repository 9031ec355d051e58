/**
 * Splits a string into words the way Python's shlex.split does (POSIX mode: single and double quotes,
 * backslash escapes, no expansion of anything). mkosi splits --qemu-args and --credential values this
 * way, so an importer of systemd's meson suite must too. Pure.
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      // Inside double quotes a backslash escapes only these, as in sh.
      else if (c === '\\' && i + 1 < text.length && '\\"$`\n'.includes(text[i + 1]!)) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new Error('a backslash ends the text: nothing left to escape');
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`no closing quotation (${quote})`);
  if (inWord) words.push(word);
  return words;
}
