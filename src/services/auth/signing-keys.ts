import { createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type JWK } from 'jose';
import { TOKEN_ALGORITHM } from '../../platform/auth/access-token.ts';

export interface SigningKeys {
  privateKey: CryptoKey;
  publicKey: KeyObject;
  /** The public key as the JWKS endpoint serves it. */
  publicJwk: JWK;
}

/**
 * Ed25519 keys: from JWT_PRIVATE_KEY, else from DATA_DIR/keys, generated there on first
 * start so that tokens survive restarts. Only the auth service holds the private key.
 */
export async function loadSigningKeys(options: { privateKeyPem?: string; dataDir: string }): Promise<SigningKeys> {
  const pem =
    options.privateKeyPem ?? (await readOrCreatePrivateKey(path.join(options.dataDir, 'keys', 'jwt-private.pem')));
  const privateKey = await importPKCS8(pem, TOKEN_ALGORITHM);
  const publicKey = createPublicKey(pem);
  const publicJwk = { ...(await exportJWK(publicKey)), alg: TOKEN_ALGORITHM, use: 'sig', kid: 'auth-1' };
  return { privateKey, publicKey, publicJwk };
}

async function readOrCreatePrivateKey(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const { privateKey } = await generateKeyPair(TOKEN_ALGORITHM, { crv: 'Ed25519', extractable: true });
  const pem = await exportPKCS8(privateKey);
  await fs.mkdir(path.dirname(file), { recursive: true });
  // 'wx': if another process created it meanwhile, keep theirs.
  await fs.writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return fs.readFile(file, 'utf8');
}
