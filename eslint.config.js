// xenemu's lint: typescript-eslint's recommended rules (syntax only, no type
// information, so the whole tree lints in seconds) and the layering of
// docs/style.md rules 1 to 3, checked on every import and re-export.
//
// The layering rule resolves each relative specifier against the importing
// file, so `../../hypervisor/x.js` is judged by where it lands, whatever the
// depth of the file that wrote it:
//
//   processes/<p>/   its own folder, shared/, packages
//   shared/          shared/, packages (no process, launcher, test or bench)
//   shared/abi/      shared/abi/ only: no node: modules, no packages (no I/O)
//   launcher/        launcher/, shared/, packages (processes by path at spawn)
//   bench/           bench/, launcher/, shared/, packages (fixtures by path at spawn)
//   test/            anything but bench/
import * as path from 'node:path';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Where an import lands: a repository path (`shared/abi/xen.ts`), or null for a package or node: module. */
function target(filename, cwd, specifier) {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return null;
  return path.relative(cwd, path.resolve(path.dirname(filename), specifier)).split(path.sep).join('/');
}

const within = (p, dir) => p === dir || p.startsWith(`${dir}/`);

/** Why `from` may not import `to` (`to` null for a package), or undefined when it may. */
function violation(from, to) {
  if (within(from, 'shared/abi')) {
    if (to === null) return 'shared/abi/ mirrors Xen\'s public headers: no I/O, so no node: modules or packages (docs/style.md rule 2)';
    if (!within(to, 'shared/abi')) return 'shared/abi/ imports nothing outside shared/abi/ (docs/style.md rule 2)';
    return undefined;
  }
  if (to === null) return undefined;
  if (within(to, 'bench') && !within(from, 'bench')) return 'nothing imports bench/ but bench/ (docs/style.md rule 1)';
  const proc = /^processes\/([^/]+)\//.exec(from);
  if (proc) {
    if (within(to, `processes/${proc[1]}`) || within(to, 'shared')) return undefined;
    return `processes are islands: processes/${proc[1]}/ imports its own folder and shared/ only (docs/style.md rule 1)`;
  }
  if (within(from, 'shared')) {
    return within(to, 'shared') ? undefined : 'shared/ imports no process, launcher, test or bench (docs/style.md rule 1)';
  }
  if (within(from, 'launcher')) {
    return within(to, 'launcher') || within(to, 'shared') ? undefined
      : 'launcher/ imports launcher/ and shared/ only; it starts processes by path, never imports them (docs/style.md rule 1)';
  }
  if (within(from, 'bench')) {
    return within(to, 'bench') || within(to, 'launcher') || within(to, 'shared') ? undefined
      : 'bench/ imports shared/ and launcher/, never test/ or processes/ (docs/style.md rule 1)';
  }
  return undefined;
}

const layering = {
  meta: {
    type: 'problem',
    docs: { description: 'imports follow the layering of docs/style.md' },
    schema: [],
    messages: { layering: '{{from}} may not import {{specifier}}: {{why}}' },
  },
  create(context) {
    const from = path.relative(context.cwd, context.filename).split(path.sep).join('/');
    const check = (node) => {
      if (!node.source || typeof node.source.value !== 'string') return;
      const why = violation(from, target(context.filename, context.cwd, node.source.value));
      if (why) context.report({ node: node.source, messageId: 'layering', data: { from, specifier: node.source.value, why } });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default defineConfig(
  { ignores: ['dist/', 'shared/native/build/', 'bench/results/', 'bench/build/', '.tap/'] },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    plugins: { xenemu: { rules: { layering } } },
    rules: {
      'xenemu/layering': 'error',
      // `_name` says "deliberately unused" (a handler's fixed signature, a loop count).
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_',
      }],
      // `let x; later(() => x); x = ...`: a closure made before the assignment
      // must see undefined, not a TDZ ReferenceError, so it stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
);
