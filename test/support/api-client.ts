import type { Role } from '../../src/platform/auth/access-token.ts';

export interface ApiResponse<Body = any> {
  status: number;
  body: Body;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  json?: unknown;
  /** A raw body sent as is (malformed JSON tests). */
  raw?: string;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

export interface TestUser {
  id: number;
  username: string;
  role: Role;
  token: string;
}

let userCounter = 0;

/** The address createUser registers a user with. */
export const emailOf = (user: Pick<TestUser, 'username'>) => `${user.username}@example.com`;

/** HTTP against a running system, as a client would call it. */
export function createApiClient(baseUrl: string, admin = { username: 'admin', password: 'admin-secret' }) {
  const request = async <Body = any>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<Body>> => {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.raw !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = options.raw;
    } else if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    }
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: the text itself
    }
    return { status: response.status, body: parsed as Body, headers: response.headers };
  };

  const login = async (username: string, password: string): Promise<string> => {
    const response = await request('POST', '/v1/auth/token', { form: { username, password } });
    if (response.status !== 200)
      throw new Error(`login ${username} failed: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.access_token;
  };

  let adminToken: string | undefined;

  /** A fresh user with the given role: registered, promoted by the admin, signed in. */
  const createUser = async (role: Role = 'engineer'): Promise<TestUser> => {
    userCounter += 1;
    const username = `user${process.pid}_${userCounter}_${role}`;
    const password = 'password-123';
    const registered = await request('POST', '/v1/auth/register', {
      json: { username, password, email: `${username}@example.com`, full_name: `Test ${role}` },
    });
    if (registered.status !== 201)
      throw new Error(`register failed: ${registered.status} ${JSON.stringify(registered.body)}`);
    if (role !== 'engineer') {
      adminToken ??= await login(admin.username, admin.password);
      const promoted = await request('PATCH', `/v1/users/${registered.body.id}`, { token: adminToken, json: { role } });
      if (promoted.status !== 200) throw new Error(`role change failed: ${promoted.status}`);
    }
    return { id: registered.body.id, username, role, token: await login(username, password) };
  };

  /** Makes users members of a project (issue 11: only members report, are assigned, see it), as its owner or an admin. */
  const addMembers = async (projectId: number, token: string, ...users: Array<Pick<TestUser, 'id'>>) => {
    for (const user of users) {
      const added = await request('POST', `/v1/projects/${projectId}/members`, { json: { user_id: user.id }, token });
      if (added.status !== 201 && added.status !== 200)
        throw new Error(`adding member ${user.id} failed: ${added.status} ${JSON.stringify(added.body)}`);
    }
  };

  return {
    baseUrl,
    request,
    login,
    createUser,
    addMembers,
    get: (path: string, token?: string) => request('GET', path, { token }),
    post: (path: string, json: unknown, token?: string) => request('POST', path, { json, token }),
    put: (path: string, json: unknown, token?: string) => request('PUT', path, { json, token }),
    patch: (path: string, json: unknown, token?: string) => request('PATCH', path, { json, token }),
    delete: (path: string, token?: string) => request('DELETE', path, { token }),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;
