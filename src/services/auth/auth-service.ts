import { hash, verify } from '@node-rs/argon2';
import { SignJWT } from 'jose';
import type { AuthenticatedUser, Role } from '../../platform/auth/access-token.ts';
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../platform/auth/access-token.ts';
import type { Database } from '../../platform/db/database.ts';
import { hasPgCode, PG_UNIQUE_VIOLATION } from '../../platform/db/pg-errors.ts';
import type { EventContext, Outbox } from '../../platform/events/outbox.ts';
import { eventContextOf, type Actor } from '../../platform/http/actor.ts';
import type { Logger } from '../../platform/logger.ts';
import { invalidCredentials, userNotFound, usernameTaken } from './errors.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { MembershipCopy } from '../membership-copy.ts';
import { usersRepository, type User } from './users-repository.ts';

export interface Registration {
  username: string;
  password: string;
  email: string;
  full_name?: string | null;
}

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
  members: MembershipCopy;
}) {
  const { db, outbox, keys, members } = deps;
  // Verifying against a real hash when the user does not exist keeps the response time
  // from telling which usernames exist.
  const decoyHash = hash('decoy password, never matches');

  const sharesProject = async (viewerId: number, userId: number): Promise<boolean> => {
    const { rows } = await db.query(`SELECT 1 FROM (${members.usersSharingWith(1)}) shared WHERE user_id = $2`, [
      viewerId,
      userId,
    ]);
    return rows.length > 0;
  };

  const createUser = async (registration: Registration, role: Role, context: Omit<EventContext, 'userId'>) => {
    const password_hash = await hash(registration.password);
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

  return {
    publicJwk: keys.publicJwk,

    register: (registration: Registration, context: Omit<EventContext, 'userId'>) =>
      createUser(registration, 'engineer', context),

    async issueToken(username: string, password: string) {
      const credentials = await usersRepository.findCredentials(db, username);
      const valid = credentials
        ? await verify(credentials.password_hash, password)
        : (await verify(await decoyHash, password), false);
      if (!credentials || !valid) throw invalidCredentials();
      const accessToken = await new SignJWT({ username: credentials.username, role: credentials.role })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: keys.publicJwk.kid })
        .setSubject(String(credentials.id))
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${deps.tokenTtlSeconds}s`)
        .sign(keys.privateKey);
      return { access_token: accessToken, token_type: 'bearer' as const, expires_in: deps.tokenTtlSeconds };
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

    changeRole: (id: number, role: Role, actor: Actor) =>
      outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const before = await usersRepository.findById(tx, id);
        if (!before) return undefined;
        const user = await usersRepository.updateRole(tx, id, role);
        if (before.role !== role) {
          events.add('user.role_changed', {
            user_id: id,
            old_role: before.role,
            new_role: role,
            changed_by: actor.user.id,
          });
        }
        return user;
      }),

    /** Creates the configured user at start if that username does not exist yet. */
    async ensureUser(credentials: { username: string; password: string }, role: Role) {
      const existing = await usersRepository.findCredentials(db, credentials.username);
      if (existing) return existing;
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
