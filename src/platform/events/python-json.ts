/**
 * JSON as Python's `json.dumps(value, ensure_ascii=False)` writes it: `", "` and `": "`
 * separators, non-ASCII unescaped. The seed's `[EVENT]` log line formats `data` this way,
 * and log searches written for the seed depend on it.
 */
export function pythonJsonDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const members = Object.entries(value)
      .filter(([, member]) => member !== undefined)
      .map(([key, member]) => `${JSON.stringify(key)}: ${pythonJsonDumps(member)}`);
    return `{${members.join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The seed's log line, once per published event. */
export function formatEventLogLine(event: {
  event_type: string;
  event_id: string;
  user_id: unknown;
  data: unknown;
}): string {
  return `[EVENT] ${event.event_type} | ID: ${event.event_id} | User: ${pythonUserId(event.user_id)} | Data: ${pythonJsonDumps(event.data)}`;
}

/** f"{event.user_id}" prints None for a missing user. */
function pythonUserId(userId: unknown): string {
  if (userId === null || userId === undefined) return 'None';
  return typeof userId === 'number' ? String(userId) : pythonJsonDumps(userId);
}
