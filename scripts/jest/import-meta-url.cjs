'use strict';
// A babel plugin for jest only: replaces `import.meta.url` with the file's own URL as a string
// literal, so ES modules compiled to CommonJS keep working (see jest.preset.ts).
const { pathToFileURL } = require('node:url');

module.exports = function importMetaUrl({ types: t }) {
  return {
    visitor: {
      MemberExpression(path, state) {
        const { object, property } = path.node;
        if (t.isMetaProperty(object) && object.meta.name === 'import' && t.isIdentifier(property, { name: 'url' })) {
          path.replaceWith(t.stringLiteral(pathToFileURL(state.filename).href));
        }
      },
    },
  };
};
