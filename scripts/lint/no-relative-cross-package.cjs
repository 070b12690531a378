// ESLint rule `hv/no-relative-cross-package` (eslint.config.mjs): a relative import, export,
// import() or require() must stay inside its file's workspace package. Options: `root` (the
// repository) and `packages` (package folders from the root; anything else is the root package).
// Test files may import the root's shared test support (test/support/).
const path = require("node:path");

const toPosix = (file) => file.split(path.sep).join("/");
const isTestFile = (relative) => /(^|\/)(test|__tests__)\/|\.test\.ts$/.test(relative);

module.exports = {
  meta: {
    type: "problem",
    schema: [
      {
        type: "object",
        properties: { root: { type: "string" }, packages: { type: "array", items: { type: "string" } } },
        required: ["root", "packages"],
        additionalProperties: false,
      },
    ],
    messages: {
      crosses:
        "'{{source}}' leaves {{from}} for {{to}}: import it by package name (@hv/…), never by a relative path.",
    },
  },
  create(context) {
    const { root, packages } = context.options[0];
    const packageOf = (relative) =>
      packages.find((dir) => relative === dir || relative.startsWith(`${dir}/`)) ?? "";
    const file = toPosix(path.relative(root, context.filename));
    const own = packageOf(file);
    const check = (node) => {
      if (!node || node.type !== "Literal" || typeof node.value !== "string") return;
      if (!node.value.startsWith(".")) return;
      const target = toPosix(path.relative(root, path.resolve(path.dirname(context.filename), node.value)));
      const other = packageOf(target);
      if (other === own) return;
      if (other === "" && isTestFile(file) && target.startsWith("test/support/")) return;
      context.report({
        node,
        messageId: "crosses",
        data: { source: node.value, from: own || "the root package", to: other || "the root package" },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      CallExpression: (node) => {
        const callee = node.callee;
        const isRequire = callee.type === "Identifier" && callee.name === "require";
        const isResolve =
          callee.type === "MemberExpression" &&
          callee.object.type === "Identifier" &&
          callee.object.name === "require" &&
          callee.property.type === "Identifier" &&
          callee.property.name === "resolve";
        if (isRequire || isResolve) check(node.arguments[0]);
      },
    };
  },
};
