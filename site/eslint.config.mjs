// ESLint for the book's own browser scripts (lib/attention_study/static): ESLint's recommended rules,
// for scripts that run in a page (no modules, no build step). Run by `make lint`.
import js from "@eslint/js";

export default [
  {
    files: ["lib/attention_study/static/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: "script",
      globals: { window: "readonly", document: "readonly", console: "readonly", JSON: "readonly" },
    },
    rules: {
      ...js.configs.recommended.rules,
      "no-var": "off",          // the scripts are written for any browser a notebook runs in
      eqeqeq: "error",
      strict: ["error", "function"],
    },
  },
];
