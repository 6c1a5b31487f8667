import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assignedMail,
  displayName,
  escapeHtml,
  statusChangedMail,
} from '../../../src/services/notifications/mail-messages.ts';

const defect = {
  id: 42,
  title: 'Трещина <script>alert("x")</script> & скол',
  projectName: 'Мост «Север»',
  projectId: 7,
};

describe('notification texts', () => {
  it("a status change: the seed's subject, old and new status, who changed it, in text and escaped HTML", () => {
    const mail = statusChangedMail({
      defect,
      oldStatus: 'В работе',
      newStatus: 'Решена',
      changedBy: 'Пётр Петров',
      recipientName: 'Иван <Иванов>',
      roles: ['reporter', 'assignee'],
    });
    assert.equal(mail.subject, "Дефект #42 изменил статус на 'Решена'");
    for (const part of [
      'Здравствуйте, Иван <Иванов>!',
      '«Трещина <script>alert("x")</script> & скол»',
      '«Мост «Север»»',
      'Было:    В работе',
      'Стало:   Решена',
      'Изменил: Пётр Петров',
      'вы автор и исполнитель',
    ]) {
      assert.ok(mail.text.includes(part), part);
    }
    assert.ok(!mail.html.includes('<script>'));
    assert.ok(mail.html.includes('Трещина &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; скол'));
    assert.ok(mail.html.includes('Иван &lt;Иванов&gt;'));
    assert.ok(mail.html.includes('<html lang="ru">'));
  });

  it('an assignment: the defect, its project, status and priority, and who assigned it; the subject names the defect and project, never the title', () => {
    const mail = assignedMail({
      defect,
      status: 'Новая',
      priority: 'Высокий',
      assignedBy: 'Пётр',
      recipientName: 'Иван',
    });
    assert.equal(mail.subject, 'Вам назначен дефект #42 в проекте «Мост «Север»»');
    assert.ok(mail.text.includes('#42 «Трещина <script>alert("x")</script> & скол»'), 'the title in the body');
    assert.match(mail.text, /Приоритет: Высокий/);
    assert.match(mail.text, /Назначил: {2}Пётр/);
    assert.ok(!mail.html.includes('<script>'));
  });

  it('a project not known names it by id', () => {
    const mail = statusChangedMail({
      defect: { ...defect, projectName: null },
      oldStatus: 'Новая',
      newStatus: 'В работе',
      changedBy: 'x',
      recipientName: 'y',
      roles: ['assignee'],
    });
    assert.match(mail.text, /в проекте #7 изменил статус/);
    const assigned = assignedMail({
      defect: { ...defect, projectName: null },
      status: null,
      priority: null,
      assignedBy: 'x',
      recipientName: 'y',
    });
    assert.equal(assigned.subject, 'Вам назначен дефект #42 в проекте #7');
  });

  it('people by full name, else login, else id', () => {
    assert.equal(displayName({ id: 1, username: 'ivan', full_name: 'Иван Иванов' }, 1), 'Иван Иванов');
    assert.equal(displayName({ id: 1, username: 'ivan', full_name: '  ' }, 1), 'ivan');
    assert.equal(displayName(undefined, 5), 'пользователь #5');
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
