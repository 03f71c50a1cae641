// ESLint's recommended rules for the front end's own sources and tests.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/", "../static/dist/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.js", "test/**/*.js", "*.mjs", "*.js"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.browser, ...globals.node },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
];
