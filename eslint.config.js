// ESLint: typescript-eslint's type-checked recommended rules over the sources, tests and
// bench; formatting is Prettier's (eslint-config-prettier turns off the rules it owns).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'dist/', 'web/dist/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe() and it() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      // Fastify's idiom: a route handler or hook is async and returns its value, awaiting or not.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests and benchmarks read JSON bodies, log lines and AMQP messages as they come:
    // untyped by nature. The unsafe-any family stays on for the sources, where types are declared.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // The concurrency core in parts a reader can hold: the outbox relay, the in-process and
    // RabbitMQ transports, the consumer runtime, the wake-up loop and the event log's stream.
    // A function (a factory with its closures counts as one) stays within 60 lines.
    files: [
      'src/platform/events/relay/**/*.ts',
      'src/platform/events/in-process/**/*.ts',
      'src/platform/events/consumer/**/*.ts',
      'src/platform/events/amqp/**/*.ts',
      'src/platform/events/outbox.ts',
      'src/platform/wakeable-loop.ts',
      'src/services/event-log/event-stream.ts',
    ],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  prettier,
);
