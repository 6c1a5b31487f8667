import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** README.md and every Markdown file under docs/, as paths relative to the repository. */
async function markdownFiles(): Promise<string[]> {
  const docs: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(ROOT, folder), { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(path.join(folder, entry.name));
      else if (entry.name.endsWith('.md')) docs.push(path.join(folder, entry.name));
    }
  };
  await walk('docs');
  return ['README.md', ...docs.sort()];
}

/** The text outside fenced code blocks and inline code, line by line (code is not Markdown). */
export function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return '';
    }
    if (marker) {
      fence = marker;
      return '';
    }
    return line.replace(/(`+)[^`]*?\1/g, '');
  });
}

/** GitHub's anchor for each heading, with -1, -2 … for repeated ones. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (marker) {
      fence = marker;
      continue;
    }
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)?.[1];
    if (!heading) continue;
    const text = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The targets of inline links and images, `[text](target)`, outside code. */
export function linkTargets(markdown: string): { line: number; target: string }[] {
  const links: { line: number; target: string }[] = [];
  proseLines(markdown).forEach((text, index) => {
    for (const match of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      links.push({ line: index + 1, target: match[1] });
  });
  return links;
}

describe('documentation links', () => {
  it('every relative link in README.md and docs/ names a file that exists, and an anchor that is a heading there', async () => {
    const files = await markdownFiles();
    assert.ok(files.length >= 10, `only ${files.length} Markdown files found`);
    const anchorsOf = new Map<string, Set<string>>();
    const anchors = async (file: string) => {
      if (!anchorsOf.has(file)) anchorsOf.set(file, headingAnchors(await fs.readFile(path.join(ROOT, file), 'utf8')));
      return anchorsOf.get(file)!;
    };
    const problems: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const { line, target } of linkTargets(await fs.readFile(path.join(ROOT, file), 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
        checked += 1;
        const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
        const resolved = pathPart
          ? path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(pathPart)))
          : file;
        const where = `${file}:${line}: ${target}`;
        if (resolved.startsWith('..')) {
          problems.push(`${where}: points outside the repository`);
          continue;
        }
        const exists = await fs.stat(path.join(ROOT, resolved)).then(
          () => true,
          () => false,
        );
        if (!exists) problems.push(`${where}: ${resolved} does not exist`);
        else if (anchor !== undefined) {
          if (!resolved.endsWith('.md')) problems.push(`${where}: an anchor into a file that is not Markdown`);
          else if (!(await anchors(resolved)).has(decodeURIComponent(anchor)))
            problems.push(`${where}: no heading #${anchor} in ${resolved}`);
        }
      }
    }
    assert.ok(checked >= 50, `only ${checked} relative links found: is the link pattern still right?`);
    assert.deepEqual(problems, []);
  });

  it('reads headings and links as GitHub does', () => {
    const markdown = [
      '# Delivery guarantees',
      "### The relay's figures",
      '## Notes',
      '## Notes',
      '```bash',
      '# not a heading',
      'see [x](nowhere.md)',
      '```',
      'See [a](a.md#b), `[code](not-a-link.md)` and [c](#the-relays-figures "title").',
    ].join('\n');
    assert.deepEqual([...headingAnchors(markdown)], ['delivery-guarantees', 'the-relays-figures', 'notes', 'notes-1']);
    assert.deepEqual(
      linkTargets(markdown).map(({ target }) => target),
      ['a.md#b', '#the-relays-figures'],
    );
  });
});
