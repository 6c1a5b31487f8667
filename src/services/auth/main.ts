import { createTokenVerifier } from '../../platform/auth/access-token.ts';
import { runMain } from '../../platform/main-entry.ts';
import { startHost } from '../../platform/service-host.ts';
import { createAuthModule } from './auth-module.ts';
import { loadSigningKeys } from './signing-keys.ts';

runMain('auth', async (config, log) => {
  const keys = await loadSigningKeys({ privateKeyPem: config.JWT_PRIVATE_KEY, dataDir: config.DATA_DIR });
  return startHost({
    config,
    log,
    name: 'auth',
    port: config.PORT ?? 8001,
    verifyToken: createTokenVerifier(keys.publicKey),
    modules: (deps) => [createAuthModule({ ...deps, keys })],
  });
});
