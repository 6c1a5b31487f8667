import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/platform/config.ts';

const POSTGRES = 'postgres://defects:secret@localhost:5432/defects';

/** Asserts loadConfig(env) throws a ConfigError whose message names `variable`. */
function assertConfigError(env: Record<string, string>, variable: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  assert.ok(caught.message.includes(variable), `message does not name ${variable}: ${caught.message}`);
  return caught;
}

describe('loadConfig defaults', () => {
  it('runs embedded with no DATABASE_URL, with the demo user testuser/123456', () => {
    const config = loadConfig({});
    assert.equal(config.embedded, true);
    assert.equal(config.DATABASE_URL, undefined);
    assert.deepEqual(config.DEMO_USER, { username: 'testuser', password: '123456' });
  });

  it('is not embedded and has no demo user when DATABASE_URL is set', () => {
    const config = loadConfig({ DATABASE_URL: POSTGRES });
    assert.equal(config.embedded, false);
    assert.equal(config.DATABASE_URL, POSTGRES);
    assert.equal(config.DEMO_USER, undefined);
  });

  it('accepts postgresql:// as well as postgres://', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).embedded, false);
  });

  it('uses an explicit DEMO_USER in either mode', () => {
    assert.deepEqual(loadConfig({ DEMO_USER: 'alice:pw' }).DEMO_USER, { username: 'alice', password: 'pw' });
    assert.deepEqual(loadConfig({ DATABASE_URL: POSTGRES, DEMO_USER: 'alice:pw' }).DEMO_USER, {
      username: 'alice',
      password: 'pw',
    });
  });

  it('splits credentials at the first colon only', () => {
    assert.deepEqual(loadConfig({ ADMIN_USER: 'root:a:b:c' }).ADMIN_USER, { username: 'root', password: 'a:b:c' });
  });

  it('has no admin user unless ADMIN_USER is set', () => {
    assert.equal(loadConfig({}).ADMIN_USER, undefined);
  });

  it('resolves the default DATA_DIR to an absolute path', () => {
    const config = loadConfig({});
    assert.ok(path.isAbsolute(config.DATA_DIR));
    assert.equal(config.DATA_DIR, path.resolve('./data'));
  });

  it('resolves a relative DATA_DIR and keeps an absolute one', () => {
    assert.equal(loadConfig({ DATA_DIR: 'var/store' }).DATA_DIR, path.resolve('var/store'));
    assert.equal(loadConfig({ DATA_DIR: '/srv/defects' }).DATA_DIR, '/srv/defects');
  });

  it('defaults LOG_LEVEL to info, ACCESS_TOKEN_TTL_SECONDS to 3600, the pool and PORT to unset (each entry point has its own)', () => {
    const config = loadConfig({});
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.ACCESS_TOKEN_TTL_SECONDS, 3600);
    assert.equal(config.DATABASE_POOL_SIZE, undefined);
    assert.equal(config.PORT, undefined);
  });
});

describe('loadConfig HOST', () => {
  it('listens on 127.0.0.1 only in embedded mode (the demo user has a known password), on every interface otherwise', () => {
    assert.equal(loadConfig({}).HOST, '127.0.0.1');
    assert.equal(loadConfig({ DATABASE_URL: POSTGRES }).HOST, '0.0.0.0');
  });

  it('takes HOST as given in either mode', () => {
    assert.equal(loadConfig({ HOST: '0.0.0.0' }).HOST, '0.0.0.0');
    assert.equal(loadConfig({ DATABASE_URL: POSTGRES, HOST: '10.0.0.5' }).HOST, '10.0.0.5');
  });
});

describe('loadConfig parsing', () => {
  it('parses PORT to a number', () => {
    const config = loadConfig({ PORT: '8080' });
    assert.equal(config.PORT, 8080);
    assert.equal(typeof config.PORT, 'number');
  });

  it('accepts the PORT bounds 1 and 65535', () => {
    assert.equal(loadConfig({ PORT: '1' }).PORT, 1);
    assert.equal(loadConfig({ PORT: '65535' }).PORT, 65535);
  });

  it('parses ACCESS_TOKEN_TTL_SECONDS and DATABASE_POOL_SIZE to numbers', () => {
    const config = loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '900', DATABASE_POOL_SIZE: '4' });
    assert.equal(config.ACCESS_TOKEN_TTL_SECONDS, 900);
    assert.equal(config.DATABASE_POOL_SIZE, 4);
  });

  it('accepts every pino level', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      assert.equal(loadConfig({ LOG_LEVEL: level }).LOG_LEVEL, level);
    }
  });

  it('ignores variables it does not declare', () => {
    const config = loadConfig({ PATH: '/usr/bin', SOMETHING_ELSE: 'x' });
    assert.equal('PATH' in config, false);
    assert.equal('SOMETHING_ELSE' in config, false);
  });

  it('does not modify the env it is given', () => {
    const env = Object.freeze({ PORT: '8080', DATABASE_URL: POSTGRES, LOG_LEVEL: 'debug' });
    loadConfig(env);
    assert.deepEqual(env, { PORT: '8080', DATABASE_URL: POSTGRES, LOG_LEVEL: 'debug' });
  });
});

describe('loadConfig rejects bad values with a ConfigError naming the variable', () => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '0' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'localhost:5432' }, 'DATABASE_URL'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ LOG_LEVEL: 'INFO' }, 'LOG_LEVEL'],
    [{ DEMO_USER: 'nocolon' }, 'DEMO_USER'],
    [{ DEMO_USER: ':password' }, 'DEMO_USER'],
    [{ DEMO_USER: 'user:' }, 'DEMO_USER'],
    [{ ADMIN_USER: 'nocolon' }, 'ADMIN_USER'],
    [{ ACCESS_TOKEN_TTL_SECONDS: '10' }, 'ACCESS_TOKEN_TTL_SECONDS'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE'],
    [{ AMQP_URL: 'http://broker' }, 'AMQP_URL'],
    // A zero delay would spin; one past a timer's range (24.8 days) fires at once.
    [{ EVENTS_CONFIRM_TIMEOUT: '0s' }, 'EVENTS_CONFIRM_TIMEOUT'],
    [{ EVENTS_CONFIRM_TIMEOUT: '1000h' }, 'EVENTS_CONFIRM_TIMEOUT'],
    [{ EVENTS_RETRY_DELAYS: '1s,0ms' }, 'EVENTS_RETRY_DELAYS'],
    [{ EVENTS_RETRY_DELAYS: '1s,600h' }, 'EVENTS_RETRY_DELAYS'],
    // A short token is guessable; a space or a colon would not survive an Authorization header.
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN'],
    [{ METRICS_TOKEN: 'sixteen chars with spaces' }, 'METRICS_TOKEN'],
    [{ METRICS_REFRESH_INTERVAL: '0s' }, 'METRICS_REFRESH_INTERVAL'],
    [{ METRICS_REFRESH_INTERVAL: 'often' }, 'METRICS_REFRESH_INTERVAL'],
    [{ ASSIGNMENT_MAILS_PER_HOUR: '0' }, 'ASSIGNMENT_MAILS_PER_HOUR'],
  ];
  for (const [env, variable] of bad) {
    it(`${variable}=${JSON.stringify(Object.values(env)[0])}`, () => {
      assertConfigError(env, variable);
    });
  }

  it('names every bad variable at once', () => {
    const error = assertConfigError({ PORT: 'abc', LOG_LEVEL: 'loud' }, 'PORT');
    assert.ok(error.message.includes('LOG_LEVEL'), error.message);
  });

  // A non-integer is a bad value too: it must stop the process, not be silently truncated
  // (parseInt turns "80.5" into 80, "1e3" into 1, and "true" is taken as 1).
  for (const value of ['80.5', '1e3', 'true']) {
    it(`PORT=${JSON.stringify(value)} (not an integer) is rejected rather than silently converted`, () => {
      assertConfigError({ PORT: value }, 'PORT');
    });
  }

  it('quotes the value as it was given in the message', () => {
    const error = assertConfigError({ PORT: '70000' }, 'PORT');
    assert.ok(error.message.includes('PORT="70000"'), error.message);
  });

  it('names a bad URL or credential but never prints its value, which may hold a password', () => {
    const secrets: Record<string, string> = {
      DATABASE_URL: 'mysql://owner:pg-S3cret@db/x',
      AMQP_URL: 'http://guest:amqp-S3cret@broker',
      SMTP_URL: 'mail://user:smtp-S3cret@mail',
      JWT_PRIVATE_KEY: 'key-S3cret',
      ADMIN_USER: 'admin-S3cret',
      DEMO_USER: ':demo-S3cret',
      METRICS_TOKEN: 'metrics-S3cret',
    };
    const error = assertConfigError(secrets, 'DATABASE_URL');
    for (const [variable, value] of Object.entries(secrets)) {
      assert.ok(error.message.includes(variable), `${variable} is not named: ${error.message}`);
      assert.ok(
        !error.message.includes(value.split(/[:@]/).find((part) => part.includes('S3cret'))!),
        `${variable}'s secret printed: ${error.message}`,
      );
    }
  });
});

describe('loadConfig operator limits', () => {
  it('leaves /metrics open by default, reads the stored state at most every 5 s, and mails 3 assignments per hour', () => {
    const config = loadConfig({});
    assert.equal(config.METRICS_TOKEN, undefined);
    assert.equal(config.metricsRefreshMs, 5_000);
    assert.equal(config.ASSIGNMENT_MAILS_PER_HOUR, 3);
  });

  it('takes a token, an interval and a limit as given', () => {
    const config = loadConfig({
      METRICS_TOKEN: 'a1B2c3D4e5F6g7H8-_.~+/=',
      METRICS_REFRESH_INTERVAL: '250ms',
      ASSIGNMENT_MAILS_PER_HOUR: '10',
    });
    assert.equal(config.METRICS_TOKEN, 'a1B2c3D4e5F6g7H8-_.~+/=');
    assert.equal(config.metricsRefreshMs, 250);
    assert.equal(config.ASSIGNMENT_MAILS_PER_HOUR, 10);
  });
});

describe('loadConfig empty strings', () => {
  it('treats empty strings as unset', () => {
    const config = loadConfig({
      DATABASE_URL: '',
      PORT: '',
      LOG_LEVEL: '',
      DEMO_USER: '',
      ADMIN_USER: '',
      DATA_DIR: '',
      ACCESS_TOKEN_TTL_SECONDS: '',
      HOST: '',
      AMQP_URL: '',
    });
    assert.equal(config.embedded, true);
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.PORT, undefined);
    assert.equal(config.LOG_LEVEL, 'info');
    assert.deepEqual(config.DEMO_USER, { username: 'testuser', password: '123456' });
    assert.equal(config.ADMIN_USER, undefined);
    assert.equal(config.DATA_DIR, path.resolve('./data'));
    assert.equal(config.ACCESS_TOKEN_TTL_SECONDS, 3600);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.AMQP_URL, undefined);
  });
});

describe('loadConfig result', () => {
  it('is frozen', () => {
    const config = loadConfig({ DATABASE_URL: POSTGRES, PORT: '8080' });
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { PORT?: number }).PORT = 1;
    }, TypeError);
    assert.equal(config.PORT, 8080);
  });
});

describe('loadConfig TRUSTED_PROXIES', () => {
  it('trusts no proxy by default', () => {
    assert.deepEqual(loadConfig({}).trustedProxies, []);
  });

  it('reads a comma-separated list of addresses and CIDR ranges, IPv4 and IPv6', () => {
    const config = loadConfig({ TRUSTED_PROXIES: ' 127.0.0.1, 10.0.0.0/8,::1 , fd00::/8' });
    assert.deepEqual(config.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  });

  for (const value of ['gateway.local', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', '10.0.0/8', ' , ']) {
    it(`rejects ${JSON.stringify(value)} naming the variable`, () => {
      assertConfigError({ TRUSTED_PROXIES: value }, 'TRUSTED_PROXIES');
    });
  }
});
