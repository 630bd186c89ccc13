// Lint rules that catch real bugs in async server code; formatting is left to the editor.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** One `no-restricted-imports` block per folder: the import patterns its files may not use. */
const boundaries = (rules) =>
  Object.entries(rules).map(([folder, forbidden]) => ({
    files: [folder],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message: `${folder} may not import this (docs/architecture.md)` }] }],
    },
  }));

export default tseslint.config(
  { ignores: ['node_modules/', '.data*/', 'dist/', 'web/dist/', 'e2e/screenshots/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['**/test/**', 'testkit/**', 'e2e/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-console': 'off' },
  },
  {
    // Command-line entry points talk to a person on the terminal.
    files: ['infra/cli.ts'],
    rules: { 'no-console': 'off' },
  },
  // The arrows between parts (docs/architecture.md): a part never imports the tooling around it,
  // the server and the proxy never import each other, the browser code only the protocol.
  ...boundaries({
    'shared/protocol/**': ['**/runtime/**', '**/server/**', '**/proxy/**', '**/web/**', '**/infra/**', '**/testkit/**', '**/bench/**', '**/e2e/**', 'node:*'],
    'web/src/**': ['**/runtime/**', '**/server/**', '**/proxy/**', '**/infra/**', '**/testkit/**', '**/bench/**', '**/e2e/**', 'node:*'],
    'server/src/**': ['**/proxy/**', '**/web/**', '**/infra/**', '**/testkit/**', '**/bench/**', '**/e2e/**', '**/test/**'],
    'proxy/src/**': ['**/server/**', '**/web/**', '**/infra/**', '**/testkit/**', '**/bench/**', '**/e2e/**', '**/test/**'],
    'runtime/*.ts': ['**/server/**', '**/proxy/**', '**/web/**', '**/infra/**', '**/testkit/**', '**/bench/**', '**/e2e/**'],
    // The tooling: tests, benchmarks and the chaos run share testkit/, never each other.
    'testkit/**': ['**/bench/**', '**/e2e/**', '**/*/test/**'],
    'bench/**': ['**/e2e/**', '**/*/test/**'],
    'e2e/**': ['**/bench/**', '**/*/test/**'],
  }),
  {
    files: ['eslint.config.js', 'vitest.config.ts'],
    ...tseslint.configs.disableTypeChecked,
  },
);
