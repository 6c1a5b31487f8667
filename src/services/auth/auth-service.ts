import { hash, verify } from '@node-rs/argon2';
import { SignJWT } from 'jose';
import type { AuthenticatedUser, Role } from '../../platform/auth/access-token.ts';
import {
  TOKEN_ALGORITHM,
  TOKEN_AUDIENCE,
  TOKEN_GENERATION_CLAIM,
  TOKEN_ISSUER,
} from '../../platform/auth/access-token.ts';
import type { TokenRevocations } from '../../platform/auth/token-revocations.ts';
import type { Database } from '../../platform/db/database.ts';
import { hasPgCode, PG_UNIQUE_VIOLATION } from '../../platform/db/pg-errors.ts';
import type { EventContext, Outbox } from '../../platform/events/outbox.ts';
import { eventContextOf, type Actor } from '../../platform/http/actor.ts';
import type { Logger } from '../../platform/logger.ts';
import { cannotDisableSelf, invalidCredentials, userNotFound, usernameTaken, wrongPassword } from './errors.ts';
import { assertAcceptablePassword } from './password-policy.ts';
import type { SignInThrottle } from './sign-in-throttle.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { MembershipCopy } from '../membership-copy.ts';
import { usersRepository, type User, type UserWithGeneration } from './users-repository.ts';

export interface Registration {
  username: string;
  password: string;
  email: string;
  full_name?: string | null;
}

export interface UserChange {
  role?: Role;
  disabled?: boolean;
}

/** Counts each argon2 computation: the costly step the throttle keeps attackers from. */
export type PasswordHashingListener = (operation: 'hash' | 'verify') => void;

export type AuthService = ReturnType<typeof createAuthService>;

/** What a user who is not an admin sees of another user: no e-mail address, no role. */
export type PublicUser = Pick<User, 'id' | 'username' | 'full_name'>;

const publicView = ({ id, username, full_name }: User): PublicUser => ({ id, username, full_name });

export function createAuthService(deps: {
  db: Database;
  outbox: Outbox;
  keys: SigningKeys;
  tokenTtlSeconds: number;
  log: Logger;
  throttle: SignInThrottle;
  revocations: TokenRevocations;
  onHashing?: PasswordHashingListener;
  members: MembershipCopy;
}) {
  const { db, outbox, keys, throttle, members } = deps;
  const counted = {
    hash: (password: string) => (deps.onHashing?.('hash'), hash(password)),
    verify: (passwordHash: string, password: string) => (deps.onHashing?.('verify'), verify(passwordHash, password)),
  };
  // Verifying against a real hash when the user does not exist keeps the response time
  // from telling which usernames exist.
  const decoyHash = hash('decoy password, never matches');

  /** This process stops accepting the user's older tokens at once; the others learn it from the event. */
  const revokeHere = (user: UserWithGeneration | undefined) => {
    if (user) deps.revocations.revoke(user.id, user.token_generation);
  };

  const sharesProject = async (viewerId: number, userId: number): Promise<boolean> => {
    const { rows } = await db.query(`SELECT 1 FROM (${members.usersSharingWith(1)}) shared WHERE user_id = $2`, [
      viewerId,
      userId,
    ]);
    return rows.length > 0;
  };

  const createUser = async (registration: Registration, role: Role, context: Omit<EventContext, 'userId'>) => {
    const password_hash = await counted.hash(registration.password);
    try {
      return await outbox.transaction({ userId: null, ...context }, async (tx, events) => {
        const user = await usersRepository.insert(tx, { ...registration, password_hash, role });
        events.add(
          'user.registered',
          {
            user_id: user.id,
            username: user.username,
            email: user.email,
            full_name: user.full_name,
            role: user.role,
          },
          { userId: user.id },
        );
        return user;
      });
    } catch (error) {
      if (hasPgCode(error, PG_UNIQUE_VIOLATION)) throw usernameTaken(registration.username);
      throw error;
    }
  };

  const signToken = (user: UserWithGeneration) =>
    new SignJWT({ username: user.username, role: user.role, [TOKEN_GENERATION_CLAIM]: user.token_generation })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: keys.publicJwk.kid })
      .setSubject(String(user.id))
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${deps.tokenTtlSeconds}s`)
      .sign(keys.privateKey);

  /** A disabled user is refused exactly as a wrong password is: the answer tells nothing more. */
  const checkCredentials = async (username: string, password: string) => {
    const credentials = await usersRepository.findCredentials(db, username);
    const valid = credentials
      ? await counted.verify(credentials.password_hash, password)
      : (await counted.verify(await decoyHash, password), false);
    return credentials && valid && !credentials.disabled ? credentials : undefined;
  };

  return {
    publicJwk: keys.publicJwk,

    /** Registration from `address`: counted per address, the password checked against the rules. */
    async register(registration: Registration, address: string, context: Omit<EventContext, 'userId'>) {
      assertAcceptablePassword(registration.password, 'password');
      await throttle.countRegistration(address);
      return createUser(registration, 'engineer', context);
    },

    /** Throttled before any hashing: AUTH_TOO_MANY_ATTEMPTS (429) once a limit is reached. */
    async issueToken(username: string, password: string, address: string) {
      const attempt = await throttle.beginSignIn(username, address);
      const user = await checkCredentials(username, password);
      if (!user) throw invalidCredentials();
      await attempt.succeeded();
      return { access_token: await signToken(user), token_type: 'bearer' as const, expires_in: deps.tokenTtlSeconds };
    },

    async getUser(id: number): Promise<User> {
      const user = await usersRepository.findById(db, id);
      if (!user) throw userNotFound(id);
      return user;
    },

    /**
     * A user as the viewer may see them: all of it for admins and oneself; id, username and
     * full name of someone sharing a project with the viewer; anyone else is not found.
     */
    async viewUser(viewer: AuthenticatedUser, id: number): Promise<User | PublicUser> {
      const user = await usersRepository.findById(db, id);
      if (user && (viewer.role === 'admin' || viewer.id === id)) return user;
      if (user && (await sharesProject(viewer.id, id))) return publicView(user);
      throw userNotFound(id);
    },

    /** Admins list every user; anyone else those sharing a project with them (themselves included), in public view. */
    async listUsers(viewer: AuthenticatedUser, page: { limit: number; offset: number }) {
      if (viewer.role === 'admin') return { ...(await usersRepository.list(db, page)), ...page };
      const result = await usersRepository.list(db, page, { ids: members.usersSharingWith, param: viewer.id });
      return { ...result, items: result.items.map(publicView), ...page };
    },

    /** An admin's change of role and/or disabled flag, in one transaction; undefined when no such user. */
    async changeUser(id: number, change: UserChange, actor: Actor): Promise<User | undefined> {
      if (change.disabled === true && id === actor.user.id) throw cannotDisableSelf();
      let revoked: UserWithGeneration | undefined;
      const user = await outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const before = await usersRepository.findById(tx, id);
        if (!before) return undefined;
        let after: User = before;
        if (change.role !== undefined && change.role !== before.role) {
          const updated = (revoked = await usersRepository.updateRole(tx, id, change.role))!;
          events.add('user.role_changed', {
            user_id: id,
            old_role: before.role,
            new_role: updated.role,
            changed_by: actor.user.id,
            token_generation: updated.token_generation,
          });
          after = updated;
        }
        if (change.disabled !== undefined && change.disabled !== before.disabled) {
          const updated = (await usersRepository.setDisabled(tx, id, change.disabled))!;
          if (updated.disabled) {
            revoked = updated;
            events.add('user.disabled', {
              user_id: id,
              disabled_by: actor.user.id,
              token_generation: updated.token_generation,
            });
          } else {
            events.add('user.enabled', { user_id: id, enabled_by: actor.user.id });
          }
          after = updated;
        }
        return after;
      });
      revokeHere(revoked);
      return user && withoutGeneration(user);
    },

    /** The signed-in user's new password; every token they hold ends, this one included. */
    async changePassword(actor: Actor, passwords: { old_password: string; new_password: string }, address: string) {
      assertAcceptablePassword(passwords.new_password, 'new_password');
      // A wrong old password is a failed sign-in: a stolen token must not become a way to guess.
      const attempt = await throttle.beginSignIn(actor.user.username, address);
      const currentHash = await usersRepository.findPasswordHash(db, actor.user.id);
      if (!currentHash) throw userNotFound(actor.user.id);
      if (!(await counted.verify(currentHash, passwords.old_password))) throw wrongPassword('old_password');
      await attempt.succeeded();
      const newHash = await counted.hash(passwords.new_password);
      const updated = await outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const user = await usersRepository.updatePassword(tx, actor.user.id, newHash);
        if (user) events.add('user.password_changed', { user_id: user.id, token_generation: user.token_generation });
        return user;
      });
      if (!updated) throw userNotFound(actor.user.id);
      revokeHere(updated);
    },

    /**
     * Creates the configured user at start if that username does not exist yet; with
     * `checkPassword` (the variable's name) its password must follow the rules.
     */
    async ensureUser(
      credentials: { username: string; password: string },
      role: Role,
      options: { checkPassword?: string } = {},
    ) {
      const existing = await usersRepository.findCredentials(db, credentials.username);
      if (existing) return existing;
      if (options.checkPassword) assertConfiguredPassword(credentials.password, options.checkPassword);
      try {
        const user = await createUser(
          { ...credentials, email: `${credentials.username}@example.com`, full_name: null },
          role,
          {},
        );
        deps.log.info({ username: user.username, role }, 'created configured user');
        return user;
      } catch (error) {
        // Another replica created it at the same moment.
        if ((error as { code?: string }).code === 'USERNAME_TAKEN')
          return usersRepository.findCredentials(db, credentials.username);
        throw error;
      }
    },
  };
}

/** A weak configured password stops the start, naming the variable (never the password). */
function assertConfiguredPassword(password: string, variable: string) {
  try {
    assertAcceptablePassword(password, 'password');
  } catch (error) {
    const reason = (error as { extra?: { errors?: Array<{ msg: string }> } }).extra?.errors?.[0]?.msg;
    throw new Error(`${variable}: the password ${reason ?? 'is not acceptable'}`, { cause: error });
  }
}

/** Responses show the user, not their token generation. */
function withoutGeneration(user: User | UserWithGeneration): User {
  const { token_generation: _generation, ...shown } = user as UserWithGeneration;
  return shown;
}
