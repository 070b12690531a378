import type { Rule } from "eslint";

/** hv/no-relative-cross-package (no-relative-cross-package.cjs). */
declare const rule: Rule.RuleModule;
export = rule;
