import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asyncApiYaml } from '../contracts/asyncapi.ts';

/** npm run asyncapi: writes docs/asyncapi.yaml from the event contract. */
const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/asyncapi.yaml');
await fs.writeFile(target, await asyncApiYaml());
console.log(`wrote ${path.relative(process.cwd(), target)}`);
