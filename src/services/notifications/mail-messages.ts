/**
 * The texts of the notification e-mails, in Russian: pure functions from what happened to
 * a subject, a plain-text body and an HTML body (every interpolated value escaped).
 */

export interface MailContent {
  subject: string;
  text: string;
  html: string;
}

export interface DefectSummary {
  id: number;
  title: string;
  /** null when the project is not known (yet): the body then names it by id. */
  projectName: string | null;
  projectId: number | null;
}

export type RecipientRole = 'reporter' | 'assignee';

export interface StatusChange {
  defect: DefectSummary;
  oldStatus: string;
  newStatus: string;
  /** Who changed it, as people read it: full name, else login, else "пользователь #id". */
  changedBy: string;
  recipientName: string;
  /** Why this person gets the mail. */
  roles: RecipientRole[];
}

export interface Assignment {
  defect: DefectSummary;
  status: string | null;
  priority: string | null;
  assignedBy: string;
  recipientName: string;
}

const SIGNATURE = 'Defect Control — система контроля дефектов';

/** The seed's consumer line, kept word for word (also the mail's subject). */
export function statusChangedSubject(defectId: number, newStatus: string): string {
  return `Дефект #${defectId} изменил статус на '${newStatus}'`;
}

/**
 * The defect's number and its project, never its title: the title is whatever the reporter
 * typed, and the subject is what a mailbox shows and filters on (the title is in the body).
 */
export function assignedSubject(defect: DefectSummary): string {
  return `Вам назначен дефект #${defect.id} в проекте ${projectText(defect)}`;
}

export function statusChangedMail(change: StatusChange): MailContent {
  const { defect } = change;
  const why = describeRoles(change.roles);
  const text = [
    `Здравствуйте, ${change.recipientName}!`,
    '',
    `Дефект #${defect.id} «${defect.title}» в проекте ${projectText(defect)} изменил статус.`,
    '',
    `Было:    ${change.oldStatus}`,
    `Стало:   ${change.newStatus}`,
    `Изменил: ${change.changedBy}`,
    '',
    `Вы получили это письмо, потому что вы ${why} этого дефекта.`,
    '',
    '-- ',
    SIGNATURE,
    '',
  ].join('\n');
  const html = page(statusChangedSubject(defect.id, change.newStatus), [
    `<p>Здравствуйте, ${escapeHtml(change.recipientName)}!</p>`,
    `<p>Дефект <b>#${defect.id}</b> «${escapeHtml(defect.title)}» в проекте ${escapeHtml(projectText(defect))} изменил статус.</p>`,
    table([
      ['Было', change.oldStatus],
      ['Стало', change.newStatus],
      ['Изменил', change.changedBy],
    ]),
    `<p style="color:#666">Вы получили это письмо, потому что вы ${escapeHtml(why)} этого дефекта.</p>`,
  ]);
  return { subject: statusChangedSubject(defect.id, change.newStatus), text, html };
}

export function assignedMail(assignment: Assignment): MailContent {
  const { defect } = assignment;
  const rows: Array<[string, string]> = [
    ['Проект', projectText(defect)],
    ['Дефект', `#${defect.id} «${defect.title}»`],
  ];
  if (assignment.status) rows.push(['Статус', assignment.status]);
  if (assignment.priority) rows.push(['Приоритет', assignment.priority]);
  rows.push(['Назначил', assignment.assignedBy]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const text = [
    `Здравствуйте, ${assignment.recipientName}!`,
    '',
    `Вам назначен дефект #${defect.id} «${defect.title}».`,
    '',
    ...rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`),
    '',
    '-- ',
    SIGNATURE,
    '',
  ].join('\n');
  const html = page(assignedSubject(defect), [
    `<p>Здравствуйте, ${escapeHtml(assignment.recipientName)}!</p>`,
    `<p>Вам назначен дефект <b>#${defect.id}</b> «${escapeHtml(defect.title)}».</p>`,
    table(rows),
  ]);
  return { subject: assignedSubject(defect), text, html };
}

/** How a person is named in a mail. */
export function displayName(
  user: { id: number; username: string; full_name: string | null } | undefined,
  id: number,
): string {
  if (!user) return `пользователь #${id}`;
  return user.full_name?.trim() || user.username;
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function projectText(defect: DefectSummary): string {
  if (defect.projectName) return `«${defect.projectName}»`;
  return defect.projectId === null ? '(проект неизвестен)' : `#${defect.projectId}`;
}

function describeRoles(roles: RecipientRole[]): string {
  const words = roles.map((role) => (role === 'reporter' ? 'автор' : 'исполнитель'));
  return words.join(' и ');
}

function table(rows: Array<[string, string]>): string {
  const cells = rows
    .map(
      ([label, value]) =>
        `<tr><td style="padding:2px 12px 2px 0;color:#666">${escapeHtml(label)}:</td><td style="padding:2px 0">${escapeHtml(value)}</td></tr>`,
    )
    .join('');
  return `<table style="border-collapse:collapse">${cells}</table>`;
}

function page(title: string, body: string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="ru">',
    '<head><meta charset="utf-8"><title>' + escapeHtml(title) + '</title></head>',
    '<body style="font-family:sans-serif;font-size:14px;line-height:1.4">',
    ...body,
    `<p style="color:#999;font-size:12px">${escapeHtml(SIGNATURE)}</p>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
